"""What a report shows, decided from the runs alone: which charts in which order, the final-metrics table,
the config comparison and the sample previews. No drawing and no HTML here."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from mg_eval.runlog import FINAL, SUMMARY, Run

TRAIN = "train"
NOT_CURVES = (FINAL, SUMMARY)  # one value per run: rows of the final table, never charts
CHECKPOINT_STEP = "checkpoint step"  # the first row of the final evaluation: which model it measured
# Curves every training dashboard leads with, in this order; other train metrics follow alphabetically.
LEADING = {"loss": 0, "learning_rate": 1, "lr": 1, "grad_norm": 2}
# Splits that are validation during training: shown right after train, before downstream splits.
VALIDATION = ("eval", "validation", "valid", "val", "dev")
# A metric whose name contains one of these is better when lower (for the "best" mark in the table).
LOWER_IS_BETTER = ("loss", "perplexity", "ppl", "error", "wer", "cer", "mse", "mae", "rmse")
# Tableau 10: one colour per run, the same in charts, legends and the run list.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MAX_SAMPLES = 12  # per split per run group: a preview, not a dump


@dataclass(frozen=True)
class Series:
    run: str
    color: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class ChartSpec:
    split: str
    name: str
    series: list[Series]
    smooth: bool = False  # draw an EMA over a faint raw curve

    @property
    def key(self) -> str:
        return f"{self.split}/{self.name}"


@dataclass(frozen=True)
class ReportRun:
    """A run as the report names and colours it (names made unique when two dirs share one)."""

    run: Run
    name: str
    color: str


def label_runs(runs: list[Run]) -> list[ReportRun]:
    seen: dict[str, int] = {}
    out = []
    for i, run in enumerate(runs):
        name = run.name
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        out.append(ReportRun(run=run, name=name, color=PALETTE[i % len(PALETTE)]))
    return out


def split_order(split: str) -> tuple[int, str]:
    if split == TRAIN:
        return (0, split)
    return (1, split) if split in VALIDATION else (2, split)


def name_order(name: str) -> tuple[int, str]:
    return (LEADING.get(name, 3), name)


def is_noisy(split: str, name: str) -> bool:
    """Curves logged every step jitter: loss and grad norm get an EMA; schedules and scores do not."""
    return "loss" in name or name == "grad_norm"


def plan_charts(runs: list[ReportRun]) -> list[ChartSpec]:
    """One chart per (split, metric) found in any run, every run that logged it overlaid."""
    keys = {(m.split, m.name) for r in runs for m in r.run.metrics if m.split not in NOT_CURVES}
    specs = []
    for split, name in sorted(keys, key=lambda k: (split_order(k[0]), name_order(k[1]))):
        series = []
        for r in runs:
            steps, values = r.run.series(split, name)
            if steps:
                series.append(Series(run=r.name, color=r.color, steps=steps, values=values))
        smooth = is_noisy(split, name) and max(len(s.steps) for s in series) >= 10
        specs.append(ChartSpec(split=split, name=name, series=series, smooth=smooth))
    return specs


@dataclass(frozen=True)
class FinalRow:
    split: str
    name: str
    cells: list[tuple[float, int] | None]  # (value, its step) per run, None where not logged
    best: int | None  # index of the best run, when at least two runs have a value


def table_order(split: str) -> int:
    """The final evaluation first, then downstream splits, validation, the run summary, train."""
    if split == FINAL:
        return 0
    if split == SUMMARY:
        return 3
    return {2: 1, 1: 2, 0: 4}[split_order(split)[0]]


def final_table(runs: list[ReportRun]) -> list[FinalRow]:
    """Per run: its final evaluation (the exported checkpoint's metrics, led by that checkpoint's step), its
    summary values, and the last value of every other metric. A run with a final evaluation shows no
    last-eval values beside it: those are of another checkpoint, and mixing them would misreport it."""
    finals = [r.run.final() for r in runs]
    keys = {(m.split, m.name) for r in runs for m in r.run.metrics}
    order = sorted(keys, key=lambda k: (table_order(k[0]), k[0], name_order(k[1])))
    rows = []
    if any(finals):
        steps = [(float(f[0]), f[0]) if f else None for f in finals]
        rows.append(FinalRow(split=FINAL, name=CHECKPOINT_STEP, cells=steps, best=None))
    for split, name in order:
        cells: list[tuple[float, int] | None] = []
        for r, final in zip(runs, finals, strict=True):
            if final and split in VALIDATION:
                cells.append(None)
            elif split == FINAL:
                cells.append((final[1][name], final[0]) if final and name in final[1] else None)
            else:
                steps_, values = r.run.series(split, name)
                cells.append((values[-1], steps_[-1]) if steps_ else None)
        if all(c is None for c in cells):
            continue
        rows.append(FinalRow(split=split, name=name, cells=cells, best=best_run(split, name, cells)))
    return rows


def best_run(split: str, name: str, cells: list[tuple[float, int] | None]) -> int | None:
    present = [(c[0], i) for i, c in enumerate(cells) if c is not None and math.isfinite(c[0])]
    lower = any(word in name.lower() for word in LOWER_IS_BETTER)
    scored = split not in (TRAIN, SUMMARY) or lower  # a learning rate, grad norm or runtime has no "best"
    if scored and len(present) >= 2 and len({v for v, _ in present}) > 1:
        return (min if lower else max)(present)[1]
    return None


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars are leaves."""
    if isinstance(config, dict) and config:
        out: dict[str, Any] = {}
        for key, value in config.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix or "(config)": config}


MISSING = object()


@dataclass(frozen=True)
class ConfigRow:
    key: str
    values: list[Any]  # MISSING where a run has no such key
    differs: bool


def config_rows(runs: list[ReportRun]) -> list[ConfigRow]:
    """Flattened config keys; with several runs, the keys whose values differ come first."""
    flat = [flatten(r.run.config) if r.run.config else {} for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = []
    for key in keys:
        values = [f.get(key, MISSING) for f in flat]
        canon = {
            json.dumps(v, sort_keys=True, default=str) if v is not MISSING else "\0missing" for v in values
        }
        rows.append(ConfigRow(key=key, values=values, differs=len(runs) > 1 and len(canon) > 1))
    return sorted(rows, key=lambda row: not row.differs)  # stable: file order within each group


def format_value(value: Any) -> str:
    if value is MISSING:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def format_number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3e}"
    return f"{value:.4g}"


@dataclass
class SampleGroup:
    """Sample previews of one split, shared by the runs that logged exactly the same ones."""

    runs: list[ReportRun]
    split: str
    samples: list[dict]
    total: int = 0
    segments: list[list[tuple[str, bool]]] = field(default_factory=list)


def segments_of(sample: dict) -> list[tuple[str, bool]]:
    segs = sample.get("segments")
    if isinstance(segs, list):
        return [(str(s.get("text", "")), bool(s.get("trained"))) for s in segs if isinstance(s, dict)]
    if "text" in sample:  # a sample without segments: plain, untrained text
        return [(str(sample["text"]), False)]
    return []


def sample_groups(runs: list[ReportRun]) -> list[SampleGroup]:
    by_content: dict[tuple[str, str], SampleGroup] = {}
    for r in runs:
        splits = dict.fromkeys(str(s.get("split", TRAIN)) for s in r.run.samples)
        for split in sorted(splits, key=split_order):
            samples = [s for s in r.run.samples if str(s.get("split", TRAIN)) == split]
            content = json.dumps(
                [{k: v for k, v in s.items() if k != "step"} for s in samples], sort_keys=True, default=str
            )
            group = by_content.get((split, content))
            if group:
                group.runs.append(r)
                continue
            shown = samples[:MAX_SAMPLES]
            by_content[(split, content)] = SampleGroup(
                runs=[r],
                split=split,
                samples=shown,
                total=len(samples),
                segments=[segments_of(s) for s in shown],
            )
    return list(by_content.values())
