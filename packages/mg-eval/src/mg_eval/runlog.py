"""The run log: what a training or evaluation run leaves behind, written by mg-train, read by reports.

A run directory holds:
  config.json     the resolved config (whatever dict the run was started with)
  metrics.jsonl   one record per line: {"step", "epoch", "split", "name", "value", "time"}
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

CONFIG, METRICS, SAMPLES, TENSORBOARD = "config.json", "metrics.jsonl", "samples.jsonl", "tb"


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
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
