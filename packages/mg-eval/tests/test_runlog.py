import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mg_eval.runlog import METRICS, RunLogger, read_run


def test_write_and_read_back(tmp_path):
    config = {"task": "classify", "learning_rate": 5e-5, "run_name": "intent-v1"}
    with RunLogger(tmp_path, config=config) as log:
        for step in range(1, 4):
            log.log(step, {"loss": 1.0 / step, "learning_rate": 5e-5}, epoch=step / 3)
        log.log(3, {"accuracy": 0.75, "f1_macro": 0.7}, split="eval", epoch=1.0)
        log.log_samples(
            [{"segments": [{"text": "我要退货", "trained": False}], "label": "退货"}], split="train"
        )
    run = read_run(tmp_path)
    assert run.name == "intent-v1" and run.config == config
    assert run.series("train", "loss") == ([1, 2, 3], [1.0, 0.5, 1 / 3])
    assert run.last("eval", "accuracy") == 0.75 and run.splits() == ["eval", "train"]
    assert run.names("eval") == ["accuracy", "f1_macro"]
    assert run.samples[0]["label"] == "退货" and run.samples[0]["split"] == "train"
    record = json.loads((tmp_path / METRICS).read_text().splitlines()[0])
    assert set(record) == {"step", "epoch", "split", "name", "value", "time"}


def test_final_evaluation_and_summary_are_their_own_records(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as log:
        for step in (6, 12, 18):
            log.log(step, {"accuracy": {6: 0.5, 12: 0.9, 18: 0.7}[step], "loss": 1.0 / step}, split="eval")
        log.log_final(12, {"accuracy": 0.9, "loss": 1 / 12})  # the best checkpoint, re-evaluated at the end
        log.log_summary(18, {"train_loss": 0.4, "train_runtime": 3.5})
    run = read_run(tmp_path)
    assert run.series("eval", "accuracy") == ([6, 12, 18], [0.5, 0.9, 0.7]), "the curve is not extended"
    assert run.final() == (12, {"accuracy": 0.9, "loss": 1 / 12})
    assert run.series("summary", "train_runtime") == ([18], [3.5])
    assert run.splits() == ["eval", "final", "summary"]


def test_final_is_the_latest_final_evaluation(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as log:
        log.log_final(6, {"accuracy": 0.5})
        time.sleep(0.01)
        log.log_final(12, {"accuracy": 0.8})  # a resumed run evaluated again
    assert read_run(tmp_path).final() == (12, {"accuracy": 0.8})
    with RunLogger(tmp_path / "none", tensorboard=False) as log:
        log.log(1, {"accuracy": 0.5}, split="eval")
    assert read_run(tmp_path / "none").final() is None


def test_tensorboard_events_hold_the_same_scalars(tmp_path):
    with RunLogger(tmp_path) as log:
        for step in range(5):
            log.log(step, {"loss": 2.0 - step * 0.25})
        log.log(4, {"ndcg@10": 0.5}, split="eval")
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(s, 2.0 - s * 0.25) for s in range(5)]
    assert acc.Scalars("eval/ndcg@10")[0].value == 0.5


def test_non_finite_values_are_kept_as_null_and_skipped_on_read(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as log:
        log.log(1, {"loss": float("nan"), "grad_norm": 1.5})
    run = read_run(tmp_path)
    assert [(m.name, m.value) for m in run.metrics] == [("grad_norm", 1.5)]


def test_half_written_last_line_is_skipped(tmp_path):
    with RunLogger(tmp_path, tensorboard=False) as log:
        log.log(1, {"loss": 1.0})
    with open(tmp_path / METRICS, "ab") as f:
        f.write(b'{"step": 2, "epoch": null, "split": "tr')
    assert [m.step for m in read_run(tmp_path).metrics] == [1]


def test_a_run_killed_mid_write_leaves_a_readable_log(tmp_path):
    code = (
        "import sys\nfrom mg_eval.runlog import RunLogger\n"
        "log = RunLogger(sys.argv[1], config={'task': 'rm'})\n"
        "step = 0\n"
        "while True:\n"
        "    step += 1\n"
        "    log.log(step, {f'm{i}': step * 0.001 for i in range(50)})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
    deadline = time.time() + 30
    while time.time() < deadline and (
        not (tmp_path / METRICS).exists() or (tmp_path / METRICS).stat().st_size < 200_000
    ):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = read_run(tmp_path)
    steps = sorted({m.step for m in run.metrics})
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > 10
    assert all(m.value == pytest.approx(m.step * 0.001) for m in run.metrics)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        read_run(tmp_path)


def test_write_json_atomic_writes_undefined_metrics_as_null_and_keeps_the_mode(tmp_path):
    from mg_eval.runlog import write_json_atomic

    path = tmp_path / "train_summary.json"
    path.write_text("{}\n")
    path.chmod(0o644)
    write_json_atomic(path, {"roc_auc": float("nan"), "curve": [1.0, float("inf")], "dir": tmp_path})
    assert json.loads(path.read_text()) == {"roc_auc": None, "curve": [1.0, None], "dir": str(tmp_path)}
    assert path.stat().st_mode & 0o777 == 0o644  # not the temp file's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_summary.json"]
