"""The run log: what a training or evaluation run leaves behind, written by mg-train, read by reports.

A run directory holds:
  config.json     the resolved config (whatever dict the run was started with)
  metrics.jsonl   one record per line: {"step", "epoch", "split", "name", "value", "time"}; split "train",
                  "eval" (and any other) are curves over steps; two splits are not:
                    "final"    the evaluation of the model the run exported (the best checkpoint when one was
                               selected), at that checkpoint's step (`log_final`)
                    "summary"  values of the run as a whole: mean train loss, runtime, throughput (`log_summary`)
  samples.jsonl   sample previews: {"split", "step", "index", "segments": [{"text", "trained"}], "label"}
  tb/             TensorBoard event files with the same scalars, tagged "<split>/<name>"

Appending is crash-safe: each record is one write() of one whole line to a file opened for append, and
the reader skips a final line that a killed run left half-written.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mg_fs

CONFIG, METRICS, SAMPLES, TENSORBOARD = "config.json", "metrics.jsonl", "samples.jsonl", "tb"
# The HF Trainer's end-of-training record: values of the whole run, kept as the run log's summary rather
# than as train points (by mg-train, and by mg-lf-bridge reading LLaMA-Factory's trainer_state.json).
SUMMARY_KEYS = frozenset(
    {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}
)
FINAL, SUMMARY = "final", "summary"  # splits that are one table row each, never a curve


@dataclass(frozen=True)
class MetricRecord:
    step: int
    epoch: float | None
    split: str
    name: str
    value: float
    time: float


class RunLogger:
    """Appends metrics and sample previews to a run directory (and TensorBoard, unless turned off)."""

    def __init__(
        self, run_dir: str | os.PathLike, *, config: Mapping[str, Any] | None = None, tensorboard: bool = True
    ):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if config is not None:
            write_json_atomic(self.dir / CONFIG, dict(config))
        self._metrics = os.open(self.dir / METRICS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._samples = os.open(self.dir / SAMPLES, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._tb = _TensorBoard(self.dir / TENSORBOARD) if tensorboard else None

    def log(
        self, step: int, metrics: Mapping[str, float], *, split: str = "train", epoch: float | None = None
    ) -> None:
        now = time.time()
        lines = []
        for name, value in metrics.items():
            value = float(value)
            record = {
                "step": int(step),
                "epoch": epoch,
                "split": split,
                "name": name,
                "value": value if math.isfinite(value) else None,
                "time": round(now, 3),
            }
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            if self._tb and math.isfinite(value):
                self._tb.scalar(f"{split}/{name}", value, int(step), now)
        # One write per call: a kill lands between records, or cuts the last line (which readers skip).
        os.write(self._metrics, "".join(lines).encode("utf-8"))
        if self._tb:
            self._tb.flush()

    def log_final(self, step: int, metrics: Mapping[str, float], *, epoch: float | None = None) -> None:
        """The evaluation of the model the run hands over, at the step of the checkpoint it comes from (the
        best one, when load_best_model_at_end picked it): reports show it as the final result, not as one
        more point at the end of the eval curve."""
        self.log(step, metrics, split=FINAL, epoch=epoch)

    def log_summary(self, step: int, metrics: Mapping[str, float]) -> None:
        """Values of the whole run (train_loss averaged over it, train_runtime, samples per second):
        reports show them in a table, not as one-point charts."""
        self.log(step, metrics, split=SUMMARY)

    def log_samples(
        self, samples: Iterable[Mapping[str, Any]], *, split: str = "train", step: int | None = None
    ) -> None:
        """Each sample: {"segments": [{"text", "trained"}], "label": ...} (extra keys are kept)."""
        lines = [
            json.dumps({"split": split, "step": step, "index": i, **s}, ensure_ascii=False) + "\n"
            for i, s in enumerate(samples)
        ]
        os.write(self._samples, "".join(lines).encode("utf-8"))

    def close(self) -> None:
        for fd in (self._metrics, self._samples):
            os.close(fd)
        if self._tb:
            self._tb.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _TensorBoard:
    """Scalars into TensorBoard event files, with tensorboard's own writer (no torch needed)."""

    def __init__(self, folder: Path):
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = Event, Summary
        self._writer = EventFileWriter(str(folder))

    def scalar(self, tag: str, value: float, step: int, wall_time: float) -> None:
        summary = self._summary(value=[self._summary.Value(tag=tag, simple_value=value)])
        self._writer.add_event(self._event(summary=summary, step=step, wall_time=wall_time))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


@dataclass
class Run:
    path: Path
    config: dict
    metrics: list[MetricRecord]
    samples: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.get("run_name") or self.path.name

    def names(self, split: str) -> list[str]:
        return sorted({m.name for m in self.metrics if m.split == split})

    def splits(self) -> list[str]:
        return sorted({m.split for m in self.metrics})

    def series(self, split: str, name: str) -> tuple[list[int], list[float]]:
        points = sorted((m.step, m.value) for m in self.metrics if m.split == split and m.name == name)
        return [p[0] for p in points], [p[1] for p in points]

    def last(self, split: str, name: str) -> float | None:
        steps, values = self.series(split, name)
        return values[-1] if values else None

    def final(self) -> tuple[int, dict[str, float]] | None:
        """(checkpoint step, metrics) of the final evaluation (the latest one, if a resumed run logged two)."""
        records = [m for m in self.metrics if m.split == FINAL]
        if not records:
            return None
        step = max(records, key=lambda m: m.time).step
        return step, {m.name: m.value for m in records if m.step == step}


def read_run(run_dir: str | os.PathLike) -> Run:
    path = Path(run_dir)
    if not (path / METRICS).is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no {METRICS})")
    config = json.loads((path / CONFIG).read_text(encoding="utf-8")) if (path / CONFIG).is_file() else {}
    metrics = [MetricRecord(**r) for r in _read_jsonl(path / METRICS) if r.get("value") is not None]
    samples = list(_read_jsonl(path / SAMPLES)) if (path / SAMPLES).is_file() else []
    return Run(path=path, config=config, metrics=metrics, samples=samples)


def _read_jsonl(path: Path) -> Iterable[dict]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):  # the last line, without its newline: a run killed mid-write
                return
            warnings.warn(f"{path}:{n}: skipped a malformed record", stacklevel=2)


def write_json_atomic(path: Path, data: Any) -> None:
    """mg_fs.write_json_atomic for run files: a NaN/infinite value (an undefined metric) is written as null,
    as in metrics.jsonl, and other non-JSON values (paths, enums) as their str()."""
    mg_fs.write_json_atomic(path, _finite(data), default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
