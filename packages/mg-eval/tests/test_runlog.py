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
