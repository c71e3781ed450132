"""The mg-data command, run as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import mg_data, read_jsonl, write_jsonl


def test_convert_alpaca_to_sharegpt_and_back(tmp_path, samples):
    src = write_jsonl(tmp_path / "in.jsonl", samples["alpaca"])
    r = mg_data("convert", src, tmp_path / "sg.json", "--to", "sharegpt")
    assert r.returncode == 0, r.stderr
    assert "3 rows, 3 valid, 0 invalid; wrote 3" in r.stderr
    r = mg_data(
        "convert", tmp_path / "sg.json", tmp_path / "back.jsonl", "--to", "alpaca", "--from", "sharegpt"
    )
    assert r.returncode == 0, r.stderr
    back = read_jsonl(tmp_path / "back.jsonl")
    assert back[0] == samples["alpaca"][0]
    assert back[2] == samples["alpaca"][2]


def test_bad_rows_are_listed_by_line_and_nothing_is_written(tmp_path, samples):
    rows = [
        samples["alpaca"][0],
        "{broken",
        {"prompt": "q", "response": ""},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
        samples["alpaca"][2],
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    r = mg_data("convert", src, out, "--to", "messages")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{src}:2: malformed JSON")
    assert lines[1] == f"{src}:3: empty response: the last assistant message has no content"
    assert lines[2] == f"{src}:4: messages[1]: roles must alternate, but user follows user"
    assert lines[3] == f"{src}: 5 rows, 2 valid, 3 invalid"
    assert out.read_text(encoding="utf-8") == "keep me\n"  # the previous output survives


def test_skip_invalid_accounts_for_every_row(tmp_path, samples):
    rows = [*samples["sharegpt"], "nope", {"prompt": 1, "response": "x"}, *samples["messages"]]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.parquet"
    r = mg_data("convert", src, out, "--to", "sharegpt", "--skip-invalid")
    assert r.returncode == 0, r.stderr
    from mg_data.io import iter_rows

    written = [row for _, row, _ in iter_rows(out)]
    rejects = read_jsonl(tmp_path / "out.parquet.rejects.jsonl")
    assert len(written) + len(rejects) == len(rows)  # rows in = rows out + rejects
    assert [(x["line"], x["reason"]) for x in rejects] == [
        (3, "malformed JSON: Expecting value at column 1"),
        (4, "prompt must be a string, got int"),
    ]
    assert rejects[0]["raw"] == "nope" and rejects[1]["row"] == {"prompt": 1, "response": "x"}
    assert written[:2] == samples["sharegpt"]


def test_validate_task_and_normalized_output(tmp_path):
    rows = [
        {"query": "如何退货", "pos": ["订单页申请退货"], "neg": ["运费说明"]},
        {"anchor": "a", "positive": "p"},
        {"query": "q"},
    ]
    src = write_jsonl(tmp_path / "e.jsonl", rows)
    r = mg_data("validate", src, "--task", "embed")
    assert r.returncode == 1
    assert f"{src}:3: missing field 'positive' (or 'positives', 'pos')" in r.stderr
    r = mg_data("validate", src, "--task", "embed", "-o", tmp_path / "clean.jsonl", "--skip-invalid")
    assert r.returncode == 0
    assert read_jsonl(tmp_path / "clean.jsonl") == [
        {"query": "如何退货", "positives": ["订单页申请退货"], "negatives": ["运费说明"]},
        {"query": "a", "positives": ["p"], "negatives": []},
    ]
    assert len(read_jsonl(tmp_path / "clean.jsonl.rejects.jsonl")) == 1


def test_validate_warns_once_about_choosen(tmp_path):
    rows = [{"prompt": f"p{i}", "choosen": "good", "rejected": "bad"} for i in range(3)]
    r = mg_data("validate", write_jsonl(tmp_path / "rm.jsonl", rows), "--task", "rm")
    assert r.returncode == 0
    assert r.stderr.count("warning: field 'choosen' is read as 'chosen'") == 1


def test_user_errors_are_one_line(tmp_path):
    r = mg_data("convert", tmp_path / "missing.jsonl", tmp_path / "o.jsonl", "--to", "messages")
    assert (r.returncode, r.stderr.strip()) == (2, f"error: {tmp_path / 'missing.jsonl'}: no such file")
    (tmp_path / "x.jsonl").write_text("{}\n")
    r = mg_data("convert", tmp_path / "x.jsonl", tmp_path / "o.csv", "--to", "messages")
    assert r.returncode == 2 and "unknown file type '.csv'" in r.stderr and "Traceback" not in r.stderr
    r = mg_data("convert", tmp_path / "x.jsonl", tmp_path / "o.jsonl", "--to", "yaml")
    assert r.returncode == 2 and "Invalid value for '--to'" in r.stderr


def test_stats_json(tmp_path, samples):
    src = write_jsonl(
        tmp_path / "in.jsonl", [*samples["alpaca"], *samples["sharegpt"], *samples["messages"], "x"]
    )
    r = mg_data("stats", src, "--json")
    assert r.returncode == 0
    stats = json.loads(r.stdout)
    assert stats["rows"] == 8 and stats["invalid"] == 1
    assert stats["formats"] == {"alpaca": 3, "sharegpt": 2, "messages": 2}
    assert stats["multi_turn"] == 2 and stats["with_tools"] == 2 and stats["with_system"] == 3
    assert stats["turns"] == {"min": 1, "mean": 1.43, "max": 3}  # (3+1+1 + 1+2 + 1+1) / 7


def test_stats_classify_labels(tmp_path):
    rows = [{"text": "t", "label": lab} for lab in ["退货", "退货", "物流"]]
    r = mg_data("stats", write_jsonl(tmp_path / "c.jsonl", rows), "--task", "classify", "--json")
    assert json.loads(r.stdout)["labels"] == {"退货": 2, "物流": 1}


def test_kill_mid_conversion_leaves_no_half_file(tmp_path, samples):
    src = tmp_path / "big.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        line = json.dumps(samples["sharegpt"][0], ensure_ascii=False) + "\n"
        f.writelines(line for _ in range(400_000))
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mg_data", "convert", str(src), str(out), "--to", "messages"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while not any(p.name.startswith(".out.jsonl.") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let it write part of the output
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert out.read_text(encoding="utf-8") == "previous\n"
