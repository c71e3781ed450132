"""The `mg-eval` command as a user runs it: `report` (the page itself is tested in test_report*.py), the
checks of `run` (the metrics are tested in test_evaluate_*.py) and `score`."""

import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import metrics_json, mg_eval, write_jsonl

from mg_eval.runlog import RunLogger


def test_report_command_writes_html_and_pngs(tmp_path):
    for name in ("a", "b"):
        with RunLogger(tmp_path / name, config={"run_name": f"run-{name}"}, tensorboard=False) as log:
            for step in range(1, 6):
                log.log(step, {"loss": 2.0 / step, "learning_rate": 1e-4, "grad_norm": 1.0})
            log.log(5, {"accuracy": 0.8}, split="eval")
    out = tmp_path / "report.html"
    proc = mg_eval("report", tmp_path / "a", tmp_path / "b", "-o", out, "--png-dir", tmp_path / "png")
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    assert "run-a" in html and "run-b" in html and "<svg" in html
    assert (tmp_path / "png" / "train_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    proc = mg_eval("report", tmp_path, "-o", tmp_path / "r.html")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path}: not a run directory (no metrics.jsonl)"
    assert not (tmp_path / "r.html").exists()


# --- `mg-eval run`: every check that can fail comes before the evaluation, each as one line ----------------


def classify_data(tmp_path):
    from conftest import CLASSIFY_ROWS, write_jsonl

    return write_jsonl(tmp_path / "test.jsonl", CLASSIFY_ROWS)


@pytest.mark.slow  # 28 s here
def test_output_into_a_missing_folder_is_created(tiny_classifier, tmp_path):
    out = tmp_path / "results" / "today" / "metrics.json"
    preds = tmp_path / "preds" / "p.jsonl"
    data = classify_data(tmp_path)
    proc = mg_eval(
        "run", "--task", "classify", "--model", tiny_classifier, "--data", data, "--output", out,
        "--predictions", preds,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["examples"] == 8
    assert len(preds.read_text(encoding="utf-8").splitlines()) == 8


def test_output_that_cannot_be_written_fails_before_evaluating(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    data = classify_data(tmp_path)
    # The model folder does not exist either: the --output check must come first, before any model loads.
    proc = mg_eval(
        "run", "--task", "classify", "--model", tmp_path / "no-model", "--data", data,
        "--output", blocker / "m.json",
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: --output {blocker / 'm.json'}: {blocker} is a file, not a folder"
    ]


def test_endpoint_that_is_not_a_url_is_one_line(tmp_path):
    proc = mg_eval("run", "--task", "classify", "--endpoint", "not-a-url", "--data", classify_data(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --endpoint not-a-url: not an http(s) URL; give one like http://127.0.0.1:8000"
    ]


@pytest.fixture
def stalled_server():
    """A real loopback HTTP port that accepts connections and reads requests but never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_stalled_endpoint_times_out_with_one_line(stalled_server, tmp_path):
    start = time.monotonic()
    proc = mg_eval(
        "run", "--task", "classify", "--endpoint", stalled_server, "--data", classify_data(tmp_path),
        "--timeout", "1.5",
    )  # fmt: skip
    assert time.monotonic() - start < 30
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {stalled_server}/v1/models: no answer within 1.5 s; the server is stalled or slow: "
        "check it, or wait longer with --timeout SECONDS"
    ]


def test_timeout_has_a_sensible_default():
    proc = mg_eval("run", "--help")
    assert proc.returncode == 0
    assert re.search(r"--timeout FLOAT.*\[default: 60", " ".join(proc.stdout.split()))


@pytest.mark.slow  # 28 s here
def test_progress_names_what_is_evaluated(tiny_classifier, tmp_path):
    proc = mg_eval("run", "--task", "classify", "--model", tiny_classifier, "--data", classify_data(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert f"evaluating 8 classify examples on {tiny_classifier}" in proc.stderr


@pytest.mark.parametrize("flag", ["--predictions", "--output"])
def test_an_output_that_is_the_data_file_is_refused(tmp_path, flag):
    data = classify_data(tmp_path)
    before = data.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    for target in (data, link):
        proc = mg_eval(
            "run", "--task", "classify", "--model", tmp_path / "no-model", "--data", data, flag, target
        )
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == [
            f"error: {flag} {target} is the same file as --data {data}; nothing was written"
        ]
    assert data.read_bytes() == before


def test_output_and_predictions_may_not_be_one_file(tmp_path):
    data = classify_data(tmp_path)
    same = tmp_path / "out.json"
    proc = mg_eval(
        "run", "--task", "classify", "--model", tmp_path / "m", "--data", data, "--output", same,
        "--predictions", same,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--predictions" in proc.stderr and "is the same file as --output" in proc.stderr


# Runs the real CLI in a Python where torch cannot be imported: mg-eval installed without its models extra.
WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None
from mg_eval.cli import main
sys.argv = ["mg-eval", *sys.argv[1:]]
main()
"""


def test_a_local_model_without_the_models_extra_names_the_extra(tiny_classifier, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, "run", "--task", "classify", "--model", tiny_classifier,
         "--data", classify_data(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: evaluating a local model needs the models extra (torch is missing): "
        "pip install 'mg-eval[models]'"
    ]


def test_reports_and_endpoints_work_without_torch(tmp_path):
    with RunLogger(tmp_path / "a", tensorboard=False) as log:
        log.log(1, {"loss": 1.0})
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, "report", tmp_path / "a", "-o", tmp_path / "r.html"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, "run", "--task", "classify", "--endpoint", "http://127.0.0.1:9",
         "--data", classify_data(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1 and "cannot reach the endpoint" in proc.stderr


# --- `mg-eval score`: a predictions file scored without generating ---------------------------------------


def mg_eval_script(*args) -> subprocess.CompletedProcess:
    """The installed `mg-eval` console script itself (the entry point in pyproject.toml)."""
    script = Path(sys.executable).with_name("mg-eval")
    return subprocess.run([script, *map(str, args)], capture_output=True, text=True)


PREDICTED = [
    ("今天天气很好，我们去公园散步。", "今天天气不错，我们去公园走走吧。"),
    ("The cat sat on the mat.", "The cat is sitting on the mat."),
    ("我用Python写了一个web server。", "我用 Python 写了一个 HTTP 服务器。"),
    ("", "The answer is 42."),
]


def test_score_reads_llamafactory_generated_predictions(tmp_path):
    from mg_eval.metrics import llamafactory_metrics

    rows = [{"prompt": f"question {i}", "predict": p, "label": r} for i, (p, r) in enumerate(PREDICTED)]
    data = write_jsonl(tmp_path / "generated_predictions.jsonl", rows)
    out = tmp_path / "results" / "today" / "metrics.json"  # its folders do not exist yet
    proc = mg_eval_script("score", data, "--metrics-style", "llamafactory", "--output", out)
    printed = metrics_json(proc)
    expected = llamafactory_metrics([p for p, _ in PREDICTED], [r for _, r in PREDICTED])
    assert {k: printed[k] for k in expected} == pytest.approx(expected, abs=1e-9)
    assert printed["examples"] == 4 and printed["metrics_style"] == "llamafactory"
    assert re.search(r"^bleu-4\s+\d+\.\d{4}$", proc.stdout, re.MULTILINE)  # the table
    assert json.loads(out.read_text(encoding="utf-8")) == printed


def test_score_reads_our_prediction_files_with_the_default_style(tmp_path):
    from mg_eval.metrics import generation_metrics

    rows = [
        {"prediction": p, "reference": r} for p, r in PREDICTED
    ]  # what `mg-eval run --predictions` writes
    printed = metrics_json(mg_eval_script("score", write_jsonl(tmp_path / "p.jsonl", rows)))
    expected = generation_metrics([p for p, _ in PREDICTED], [r for _, r in PREDICTED])
    assert printed["metrics_style"] == "sacrebleu"
    assert {k: printed[k] for k in expected} == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"predict": "好的", "prompt": "q"}', "no label column"),
        ('{"prediction": "x", "reference": null}', "reference is not a string: null"),
        ('{"question": "q", "answer": "a"}', "no prediction: a row needs prediction and reference (or "
         "LLaMA-Factory's predict and label); its columns: question, answer"),
        ('{"predict": "好的", label: "x"}', "malformed JSON: Expecting property name enclosed in double quotes "
         "at column 19"),
    ],
)  # fmt: skip
def test_score_a_bad_row_is_one_line_with_file_and_line(tmp_path, bad_line, reason):
    data = tmp_path / "p.jsonl"
    good = json.dumps({"predict": "好的", "label": "好的"}, ensure_ascii=False)
    data.write_text(f"{good}\n{good}\n{bad_line}\n{good}\n", encoding="utf-8")
    out = tmp_path / "metrics.json"
    proc = mg_eval_script("score", data, "--output", out)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {data}:3: {reason}"]
    assert proc.stdout == "" and not out.exists()


def test_score_an_empty_file_or_an_output_over_it(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    proc = mg_eval_script("score", empty)
    assert (proc.returncode, proc.stderr.strip()) == (2, f"error: {empty}: no rows to score")
    data = write_jsonl(tmp_path / "p.jsonl", [{"predict": "a", "label": "a"}])
    before = data.read_bytes()
    proc = mg_eval_script("score", data, "--output", data)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"error: --output {data} is the same file as PREDICTIONS {data}; nothing was written"
    )
    assert data.read_bytes() == before


def test_score_llamafactory_style_without_its_extra_names_the_extra(tmp_path):
    without_jieba = WITHOUT_TORCH.replace('sys.modules["torch"]', 'sys.modules["jieba"]')
    data = write_jsonl(tmp_path / "p.jsonl", [{"predict": "好的", "label": "好的"}])
    proc = subprocess.run(
        [sys.executable, "-c", without_jieba, "score", data, "--metrics-style", "llamafactory"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: metrics_style llamafactory needs the llamafactory-metrics extra (jieba is missing): "
        "pip install 'mg-eval[llamafactory-metrics]'"
    ]
