"""A run that cannot go on stops with one line, a non-zero exit and the checkpoints it had, for real causes:
a diverging learning rate, a loss made infinite by the data, a full disk (a small tmpfs), Ctrl-C and SIGTERM
sent to the real `mg-train` process."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import mg_train, write_config
from safetensors.torch import load_file

from mg_testing.datasets import classify_rows, score_rows, write_jsonl

BAR = re.compile(r"^.*(?:it/s|s/it)\]")  # a tqdm bar up to its rate
TINY = {"per_device_train_batch_size": 4, "max_length": 16, "logging_steps": 1, "seed": 0}


def config(tmp_path: Path, model_dir: Path, **extra) -> Path:
    rows = write_jsonl(tmp_path / "train.jsonl", classify_rows(copies=1))  # 24 rows
    fields = {"task": "classify", "model_name_or_path": str(model_dir), "train_file": str(rows)}
    fields.update(output_dir=str(tmp_path / "run"), **TINY, **extra)
    return write_config(tmp_path / "config.yaml", **fields)


def last_line(stderr: str) -> str:
    """The last line of ours: progress bar redraws (ended by \\r, or a line ours was appended to) left out."""
    for segment in reversed(re.split(r"[\r\n]", stderr)):
        text = BAR.sub("", segment).strip()
        if text:
            return text
    raise AssertionError("nothing on stderr")


def assert_finite_weights(checkpoint: Path) -> None:
    for name, tensor in load_file(checkpoint / "model.safetensors").items():
        assert torch.isfinite(tensor).all(), name


@pytest.mark.slow  # over 20 s here: trains
def test_a_diverging_learning_rate_stops_the_run(tmp_path, tiny_encoder_dir):
    cfg = config(
        tmp_path, tiny_encoder_dir, learning_rate=1e30, max_steps=6, save_strategy="steps", save_steps=1
    )
    proc = mg_train(cfg)
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = last_line(proc.stderr)
    assert line.startswith("error: loss is nan at step 2 (learning_rate 1e+30): training diverged"), line
    assert "lower learning_rate" in line and "Traceback" not in proc.stderr
    run = tmp_path / "run"
    assert not (run / "model").exists()  # no export of NaN weights
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1"]
    assert f"{run / 'checkpoint-1'}, has finite weights" in line
    assert_finite_weights(run / "checkpoint-1")


@pytest.mark.slow  # over 20 s here: trains
def test_a_loss_made_infinite_by_the_data_stops_the_run(tmp_path, tiny_encoder_dir):
    rows = score_rows()
    rows[0] = {**rows[0], "score": 1e300}  # finite, but its squared error is not
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_config(
        tmp_path / "config.yaml",
        task="score",
        model_name_or_path=str(tiny_encoder_dir),
        train_file=str(train),
        output_dir=str(tmp_path / "run"),
        score_loss="mse",  # cosent reads only the order of the labels
        per_device_train_batch_size=len(rows),
        max_steps=2,
        **{k: v for k, v in TINY.items() if k != "per_device_train_batch_size"},
    )
    proc = mg_train(cfg)
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = last_line(proc.stderr)
    assert line.startswith("error: loss is inf at step 1"), line
    assert "look for extreme values in the data" in line and "no checkpoint was saved" in line
    assert not (tmp_path / "run" / "model").exists()


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MB tmpfs: room for one checkpoint of the tiny encoder (5 MB with its optimizer), not two."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.slow  # over 20 s here: trains
def test_a_full_disk_while_saving_says_so_and_keeps_the_previous_checkpoint(
    tmp_path, tiny_encoder_dir, small_disk
):
    run = small_disk / "run"
    cfg = config(tmp_path, tiny_encoder_dir, max_steps=4, save_strategy="steps", save_steps=1)
    proc = mg_train(cfg, "--output-dir", run)
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = last_line(proc.stderr)
    assert line == (
        f"error: disk full while saving checkpoint-2 to {run}: free space or set save_total_limit "
        f"({run / 'checkpoint-1'} is kept)"
    ), line
    assert "unexpected pos" not in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-1"]  # the half one is gone
    assert json.loads((run / "checkpoint-1" / "trainer_state.json").read_text())["global_step"] == 1
    assert_finite_weights(run / "checkpoint-1")


def start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w", encoding="utf-8") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)


def wait_for_step(proc: subprocess.Popen, run: Path, log: Path, step: int, timeout: float = 240) -> None:
    """Until the run log has the train loss of `step` (training is under way)."""
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while True:
        if metrics.exists() and any(
            json.loads(line)["step"] >= step for line in metrics.read_text(encoding="utf-8").splitlines()
        ):
            return
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no step {step} after {timeout} s"
        time.sleep(0.05)


def steps_logged(run: Path) -> list[int]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["step"] for r in records if r["split"] == "train" and r["name"] == "loss"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow  # over 20 s here: trains
def test_a_signal_stops_at_a_step_saves_and_says_how_to_resume(tmp_path, tiny_encoder_dir, sig):
    cfg = config(tmp_path, tiny_encoder_dir, max_steps=400, save_strategy="no")
    run, log = tmp_path / "run", tmp_path / "run.log"
    proc = start([sys.executable, "-m", "mg_cli.train", str(cfg)], log)
    wait_for_step(proc, run, log, step=2)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    stderr = log.read_text()
    saved = [p for p in run.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    assert len(saved) == 1, stderr[-3000:]  # save_strategy "no", yet the stop saved one
    step = json.loads((saved[0] / "trainer_state.json").read_text())["global_step"]
    assert 2 <= step < 400 and max(steps_logged(run)) == step
    line = last_line(stderr)
    name = signal.Signals(sig).name
    assert (
        line == f"{name}: stopped after step {step}; saved {saved[0]}; resume with: mg-train {cfg} --resume"
    )
    assert "Traceback" not in stderr and not (run / "model").exists()

    if sig == signal.SIGINT:  # the printed command resumes it to the end
        command = shlex.split(line.split("resume with: ")[1])
        assert command[0] == "mg-train"
        proc = mg_train(*command[1:], "--max-steps", step + 3)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"done: {step + 3} steps" in proc.stderr
        assert steps_logged(run) == list(range(1, step + 4))


@pytest.mark.slow  # over 20 s here: trains
def test_a_second_signal_stops_at_once(tmp_path, tiny_encoder_dir):
    cfg = config(tmp_path, tiny_encoder_dir, max_steps=400, save_strategy="no", eval_strategy="no")
    run, log = tmp_path / "run", tmp_path / "run.log"
    proc = start([sys.executable, "-m", "mg_cli.train", str(cfg)], log)
    wait_for_step(proc, run, log, step=1)
    # Two different signals back to back: Python runs both handlers, in order, before the step can end (two
    # SIGINTs could merge into one).
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    assert last_line(log.read_text()).startswith(
        "interrupted; resume from the newest checkpoint with: mg-train"
    )
    assert "Traceback" not in log.read_text()
    assert not list(run.glob("checkpoint-*"))  # stopped without saving
