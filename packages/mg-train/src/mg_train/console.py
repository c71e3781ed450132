"""What a run prints: its own lines, not the libraries' expected notices.

The notices replaced or dropped here are ones every run shows and no user can act on: the model-loading
table that says a new head is MISSING (we print one line instead), DeepSpeed guessing the CPU accelerator
at import, transformers' "mtime may not be reliable" when two checkpoints are saved within a second, and
the loading/saving progress bars. Everything else (real warnings) still reaches the console.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOT_METRICS = re.compile(r"runtime|per_second|epoch|step")  # eval_* keys that describe the run, not the model
# logger name -> the start of the notices of that logger we drop
EXPECTED = {
    "DeepSpeed": "Setting accelerator to CPU",
    "transformers.trainer_utils": "mtime may not be reliable",
}
STATUS_WORDS = {
    "MISSING": "new, initialized randomly (this run trains them)",
    "UNEXPECTED": "in the checkpoint but unused",
    "MISMATCH": "re-initialized (shape differs)",
}


class _Drop(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quiet_notices() -> None:
    """Drop the expected notices, process-wide. Call before transformers is imported (DeepSpeed's comes at
    import); the filters sit on the emitting loggers, so they hold whatever handlers the libraries add."""
    for name, prefix in EXPECTED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_Drop(prefix))


@contextmanager
def quiet_model_loading(log: Callable[[str], None] | None) -> Iterator[None]:
    """Model loading without transformers' progress bars and LOAD REPORT tables; each report becomes one
    line through `log` (none when `log` is None)."""
    from transformers.utils import logging as hf_logging

    reports: list[str] = []

    def grab(record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in str(record.msg):
            reports.append(record.getMessage())
            return False
        return True

    logger = logging.getLogger("transformers.modeling_utils")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    logger.addFilter(grab)
    try:
        yield
    finally:
        logger.removeFilter(grab)
        if bars:
            hf_logging.enable_progress_bar()
    for report in reports:
        if log:
            log(load_report_line(report))


def load_report_line(report: str) -> str:
    """transformers' LOAD REPORT table as one line: "model: classifier.bias, classifier.weight: new, ..."."""
    lines = ANSI.sub("", report).splitlines()
    head = lines[0].split(" LOAD REPORT")[0] if lines else "model"
    keys: dict[str, list[str]] = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 2 and cells[1] in STATUS_WORDS:
            keys.setdefault(cells[1], []).append(cells[0])
    parts = [f"{', '.join(sorted(names))}: {STATUS_WORDS[status]}" for status, names in keys.items()]
    return f"loaded {head}; " + "; ".join(parts) if parts else f"loaded {head}"


def summary_lines(
    summary: dict,
    runtime: float | None,
    serve_command: str | None,
    *,
    best_loaded: bool,
    adapter_command: str | None = None,
) -> list[str]:
    """The end of a run on the console: steps, time, train loss, the evaluation (of the best checkpoint
    when `best_loaded`, else of the last step), where the model is and how to serve it."""
    done = f"done: {summary.get('global_step')} steps"
    if runtime is not None:
        done += f" in {runtime:.1f} s"
    if summary.get("train_loss") is not None:
        done += f", train loss {summary['train_loss']:.4g}"
    lines = [done]
    evals = {
        k[5:]: v
        for k, v in summary.items()
        if k.startswith("eval_") and isinstance(v, int | float) and not NOT_METRICS.search(k)
    }
    if evals:
        best = summary.get("best_checkpoint")
        which = f"evaluation of the best checkpoint, {best}" if best and best_loaded else "final evaluation"
        lines.append(f"{which}: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(evals.items())))
    if summary.get("model_dir"):
        lines.append(f"model: {summary['model_dir']}")
    if serve_command:
        lines.append(f"serve it: {serve_command}")
    if summary.get("adapter_dir"):
        lines.append(f"LoRA adapter: {summary['adapter_dir']}")
    if adapter_command:
        lines.append(f"or serve the adapter on its base model: {adapter_command}")
    return lines
