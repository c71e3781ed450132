"""What a real run prints: its own summary (steps, time, loss, the evaluation, the model, the serve command
from what the export wrote), and none of the libraries' expected notices."""

from __future__ import annotations

import json

import pytest
from conftest import mg_train, write_config

from mg_testing.datasets import classify_rows, write_jsonl

# Real training runs of a few steps each (20-60 s on 2 cores): not part of `nox -s quick`.
pytestmark = pytest.mark.slow

# Seen in every tiny run before: DeepSpeed guessing the CPU at import, the MISSING-head table, torch's
# pin_memory warning for each DataLoader, two checkpoints saved within a second, loading/saving bars.
NOISE = [
    "Setting accelerator to CPU",
    "LOAD REPORT",
    "| MISSING",
    "pin_memory",
    "mtime may not be reliable",
    "Loading weights",
    "Writing model shards",
]


def test_a_run_ends_with_its_summary_and_without_library_notices(tmp_path, tiny_encoder_dir):
    rows = classify_rows(copies=1)
    cfg = write_config(
        tmp_path / "config.yaml",
        task="classify",
        model_name_or_path=str(tiny_encoder_dir),
        train_file=str(write_jsonl(tmp_path / "train.jsonl", rows)),
        eval_file=str(write_jsonl(tmp_path / "eval.jsonl", rows[:6])),
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=8,
        max_length=16,
        num_train_epochs=2,  # 6 steps
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,  # checkpoints within a second of each other
        logging_steps=1,
    )
    proc = mg_train(cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert [n for n in NOISE if n in out] == []
    assert (
        "loaded BertForSequenceClassification; classifier.bias, classifier.weight: new, initialized "
        "randomly (this run trains them)"
    ) in proc.stderr

    run = tmp_path / "run"
    summary = json.loads((run / "train_summary.json").read_text(encoding="utf-8"))
    lines = proc.stderr.splitlines()[-4:]
    assert lines[0].startswith("done: 6 steps in ") and f"train loss {summary['train_loss']:.4g}" in lines[0]
    best = summary["best_checkpoint"]
    assert best and lines[1].startswith(f"evaluation of the best checkpoint, {best}: accuracy ")
    assert f"loss {summary['eval_loss']:.4g}" in lines[1]
    assert lines[2] == f"model: {run / 'model'}"
    export = json.loads((run / "model" / "mg_export.json").read_text(encoding="utf-8"))
    assert lines[3] == f"serve it: {export['serve']['vllm>=0.33']['command']}"
    # save_total_limit's default: two checkpoints, the newest and the best among them
    kept = sorted(run.glob("checkpoint-*"))
    assert len(kept) <= 2 and run / "checkpoint-6" in kept and best in map(str, kept)
