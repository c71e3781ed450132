"""One evaluation path: the metrics mg-train logs for its final evaluation are the ones `mg eval run --model`
computes on the exported folder, and train_summary.json carries the same numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import metrics, mg_train, write_config

from mg_testing.datasets import classify_rows, embed_rows, pair_rows, write_jsonl

# Real training runs of a few steps each (20-60 s on 2 cores): not part of `nox -s quick`.
pytestmark = pytest.mark.slow

# The `mg` umbrella, in a Python where sentence-transformers cannot be imported: evaluating an embedder must
# not need it (it is no dependency of mg-eval's models extra).
MG_WITHOUT_ST = """
import sys
sys.modules["sentence_transformers"] = None
from mg_cli.main import main
sys.argv = ["mg", *sys.argv[1:]]
main()
"""


def train(tmp_path: Path, task: str, model_dir: Path, rows: list[dict], **extra) -> tuple[Path, Path]:
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    config = {
        "task": task,
        "model_name_or_path": str(model_dir),
        "train_file": str(data),
        "eval_file": str(data),
        "output_dir": str(tmp_path / "run"),
        "per_device_train_batch_size": 8,
        "max_length": 64,
        "logging_steps": 1,
        "seed": 0,
        **extra,
    }
    proc = mg_train(write_config(tmp_path / "config.yaml", **config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "run", data


def final_evaluation(run_dir: Path) -> tuple[int, dict[str, float]]:
    records = [m for m in metrics(run_dir) if m["split"] == "final"]
    assert records, "no final evaluation in the run log"
    assert len({m["step"] for m in records}) == 1
    return records[0]["step"], {m["name"]: m["value"] for m in records}


def mg_eval_run(task: str, model_dir: Path, data: Path, out: Path) -> dict:
    # The batch size of evaluation during training (per_device_eval_batch_size, 8 by default): the same
    # batches are padded alike, so the numbers are not just close but equal.
    proc = subprocess.run(
        [sys.executable, "-c", MG_WITHOUT_ST, "eval", "run", "--task", task, "--model", str(model_dir),
         "--data", str(data), "--batch-size", "8", "--output", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def assert_same(run_dir: Path, task: str, data: Path, tmp_path: Path) -> dict[str, float]:
    step, final = final_evaluation(run_dir)
    got = mg_eval_run(task, run_dir / "model", data, tmp_path / "eval.json")
    task_metrics = {k: v for k, v in final.items() if k != "loss"}  # the loss is the trainer's, not mg-eval's
    assert task_metrics and task_metrics == {k: got[k] for k in task_metrics}
    summary = json.loads((run_dir / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["final_step"] == step
    assert {k: summary[f"eval_{k}"] for k in final} == final
    return final


def test_classify_best_checkpoint(tmp_path, tiny_encoder_dir):
    run_dir, data = train(
        tmp_path,
        "classify",
        tiny_encoder_dir,
        classify_rows(copies=1),
        num_train_epochs=2,
        learning_rate=5e-3,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
    )
    assert_same(run_dir, "classify", data, tmp_path)
    step, _ = final_evaluation(run_dir)
    best = json.loads((run_dir / "train_summary.json").read_text(encoding="utf-8"))["best_checkpoint"]
    assert best.endswith(f"checkpoint-{step}")
    eval_steps = [m["step"] for m in metrics(run_dir) if m["split"] == "eval" and m["name"] == "accuracy"]
    assert eval_steps == [3, 6]  # 24 rows / batch 8, one evaluation per epoch, none added at the end


def test_embed(tmp_path, tiny_encoder_dir):
    run_dir, data = train(
        tmp_path, "embed", tiny_encoder_dir, embed_rows(), max_steps=2, eval_strategy="steps", eval_steps=2,
        save_strategy="no", load_best_model_at_end=False, learning_rate=1e-3,
    )  # fmt: skip
    final = assert_same(run_dir, "embed", data, tmp_path)
    assert "ndcg@10" in final


def test_decoder_reward_model_on_conversations(tmp_path, tiny_decoder_dir):
    # Message lists: both entry points render them with the model's chat template (ChatML here).
    rows = [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in pair_rows()
    ]
    run_dir, data = train(
        tmp_path, "rm", tiny_decoder_dir, rows, max_steps=2, eval_strategy="steps", eval_steps=2,
        save_strategy="no", load_best_model_at_end=False, learning_rate=3e-3,
    )  # fmt: skip
    final = assert_same(run_dir, "rm", data, tmp_path)
    assert "pairwise_accuracy" in final and "mean_margin" in final
