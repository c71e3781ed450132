"""What a run finds in output_dir: a previous run is never silently replaced or appended to, and resuming
skips a newest checkpoint whose weights or optimizer state cannot be read (truncated for real here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import mg_train, write_config

from mg_testing.datasets import classify_rows, write_jsonl

TINY = {"per_device_train_batch_size": 4, "max_length": 16, "logging_steps": 1, "seed": 0}


def config(tmp_path: Path, model_dir: Path, **extra) -> Path:
    rows = write_jsonl(tmp_path / "train.jsonl", classify_rows(copies=1))
    fields = {"task": "classify", "model_name_or_path": str(model_dir), "train_file": str(rows)}
    fields.update(output_dir=str(tmp_path / "run"), **TINY, **extra)
    return write_config(tmp_path / "config.yaml", **fields)


def train_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r for r in records if r["split"] == "train" and r["name"] == "loss"]


@pytest.mark.slow  # over 20 s here: trains
def test_a_previous_run_is_refused_then_overwritten_with_a_clean_log(tmp_path, tiny_encoder_dir):
    cfg = config(tmp_path, tiny_encoder_dir, max_steps=2, save_strategy="steps", save_steps=1)
    run = tmp_path / "run"
    assert mg_train(cfg).returncode == 0
    before = {p.name for p in run.iterdir()}
    assert {"checkpoint-1", "checkpoint-2", "model", "metrics.jsonl"} <= before

    proc = mg_train(cfg)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: output_dir: {run} holds a previous run (model, metrics.jsonl, samples.jsonl, "
        "train_summary.json, ...); continue it with --resume (resume_from_checkpoint: auto) or start over "
        "with overwrite_output_dir: true"
    )
    assert {p.name for p in run.iterdir()} == before  # untouched

    proc = mg_train(cfg, "--overwrite-output-dir", "true", "--max-steps", "3", "--save-strategy", "no")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"overwrite_output_dir: removed the previous run in {run}" in proc.stderr
    assert [r["step"] for r in train_records(run)] == [1, 2, 3]  # one run in the log, not two
    assert not list(run.glob("checkpoint-*"))  # the old checkpoints went with the old run
    assert len(list((run / "tb").iterdir())) == 1
    samples = (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(samples) == 3  # preview_samples of this run only
    assert json.loads((run / "train_summary.json").read_text())["global_step"] == 3


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_encoder_dir) -> tuple[Path, Path]:
    """A run of 4 steps with checkpoint-2 and checkpoint-4."""
    tmp_path = tmp_path_factory.mktemp("finished")
    cfg = config(tmp_path, tiny_encoder_dir, max_steps=4, save_strategy="steps", save_steps=2)
    proc = mg_train(cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cfg, tmp_path / "run"


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("broken", ["model.safetensors", "optimizer.pt"])
@pytest.mark.slow  # over 20 s here: trains
def test_resume_skips_a_newest_checkpoint_with_unreadable_files(tmp_path, finished_run, broken):
    cfg, original = finished_run
    run = tmp_path / "run"
    shutil.copytree(original, run)
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    truncate(run / "checkpoint-4" / broken)
    records = len(train_records(run))

    proc = mg_train(cfg, "--output-dir", run, "--resume", "--max-steps", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resume: {run / 'checkpoint-4'} has " in proc.stderr
    assert f"{broken}" in proc.stderr and f"resuming from {run / 'checkpoint-2'}" in proc.stderr
    # Resumed from step 2 (not the start, not step 4): steps 3, 4 and 5 were trained again.
    assert [r["step"] for r in train_records(run)[records:]] == [3, 4, 5]
