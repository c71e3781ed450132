"""LLaMA-Factory's logs as mg-train's run log (mg_eval.runlog), so `mg-eval report` draws both kinds of run.

The source is the HF Trainer's own log history, which LLaMA-Factory saves in trainer_state.json (in its output
folder at the end, in each checkpoint-N before): the same records mg-train's RunLogCallback writes natively, so
the curves have the same names (loss, grad_norm, learning_rate, rewards/..., eval_*). A run stopped before its
first checkpoint has only LLaMA-Factory's trainer_log.jsonl (loss, lr, eval_loss per logging step): that is
used then. The run log is rewritten whole from the history each time, so a resumed run has one curve.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mg_eval.runlog import CONFIG, METRICS, SAMPLES, SUMMARY_KEYS, TENSORBOARD, RunLogger

STATE_FILE, LF_LOG = "trainer_state.json", "trainer_log.jsonl"
# trainer_log.jsonl's names -> the HF log's
LF_LOG_NAMES = {
    "loss": "loss",
    "lr": "learning_rate",
    "eval_loss": "eval_loss",
    "accuracy": "rewards/accuracies",
}


@dataclass
class History:
    records: list[dict[str, Any]]
    source: Path | None
    global_step: int = 0
    best_checkpoint: str | None = None
    summary: dict[str, float] = field(default_factory=dict)


def read_history(lf_dir: Path) -> History:
    """The log history of the LLaMA-Factory run in `lf_dir` from the most complete file there is."""
    for path in [lf_dir / STATE_FILE, *(c / STATE_FILE for c in newest_first(lf_dir))]:
        state = _read_json(path)
        if isinstance(state, dict) and isinstance(state.get("log_history"), list):
            records = [r for r in state["log_history"] if isinstance(r, dict)]
            summary = next((r for r in reversed(records) if SUMMARY_KEYS & r.keys()), {})
            return History(
                records=records,
                source=path,
                global_step=int(state.get("global_step") or 0),
                best_checkpoint=state.get("best_model_checkpoint"),
                summary={k: v for k, v in summary.items() if k in SUMMARY_KEYS},
            )
    records = [_from_lf_log(r) for r in _read_jsonl(lf_dir / LF_LOG)]
    records = [r for r in records if len(r) > 2]  # progress-only lines carry no value
    step = max((r["step"] for r in records), default=0)
    return History(records=records, source=lf_dir / LF_LOG if records else None, global_step=step)


def newest_first(lf_dir: Path) -> list[Path]:
    """The checkpoint-N folders of a run, newest first."""
    found = [p for p in lf_dir.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[11:]), reverse=True)


def complete_checkpoints(lf_dir: Path) -> list[Path]:
    """The checkpoints a run can resume from, newest first: the HF Trainer writes trainer_state.json last, so
    a checkpoint-N without it was cut short (by Ctrl-C or a kill while saving)."""
    return [c for c in newest_first(lf_dir) if (c / STATE_FILE).is_file()]


def write_run_log(run_dir: Path, history: History, config: dict, final: dict[str, float] | None) -> None:
    """metrics.jsonl (+ TensorBoard) and config.json in `run_dir`, as mg-train writes them: train and eval
    curves per step, the run's summary, and the final evaluation (`final`: LLaMA-Factory's eval_results)."""
    for name in (METRICS, SAMPLES, CONFIG):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / TENSORBOARD, ignore_errors=True)
    with RunLogger(run_dir, config=config) as logger:
        for record in history.records:
            _log_record(logger, record)
        if history.summary:
            logger.log_summary(history.global_step, history.summary)
        if final:
            logger.log_final(history.global_step, final)


def _log_record(logger: RunLogger, record: dict[str, Any]) -> None:
    """One HF log record split as mg-train's RunLogCallback splits it (the summary record is logged apart)."""
    if SUMMARY_KEYS & record.keys():
        return
    step, epoch = int(record.get("step", 0)), record.get("epoch")
    train, evals = {}, {}
    for key, value in record.items():
        if key in ("step", "epoch") or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if key.startswith("eval_"):
            evals[key[5:]] = value
        else:
            train[key] = value
    if train:
        logger.log(step, train, split="train", epoch=epoch)
    if evals:
        logger.log(step, evals, split="eval", epoch=epoch)


def final_metrics(lf_dir: Path) -> dict[str, float]:
    """LLaMA-Factory's evaluation after training (do_eval), without the eval_ prefix and the timings."""
    results = _read_json(lf_dir / "eval_results.json")
    if not isinstance(results, dict):
        return {}
    skip = ("runtime", "per_second", "epoch")
    return {
        k.removeprefix("eval_"): v
        for k, v in results.items()
        if isinstance(v, int | float) and not any(s in k for s in skip)
    }


def _from_lf_log(line: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"step": line.get("current_steps", 0), "epoch": line.get("epoch")}
    out.update({ours: line[theirs] for theirs, ours in LF_LOG_NAMES.items() if theirs in line})
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(record, dict):
            out.append(record)
    return out
