"""What is in a data file: rows, formats, turns, lengths, and per-task facts (labels, negatives)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from mg_data import formats
from mg_data.pipeline import Report, run, task_schema, task_source
from mg_data.sources import open_source


@dataclass
class Summary:
    """Running min/mean/max of a number."""

    count: int = 0
    total: float = 0.0
    min: float | None = None
    max: float | None = None

    def add(self, x: float) -> None:
        self.count += 1
        self.total += x
        self.min = x if self.min is None else min(self.min, x)
        self.max = x if self.max is None else max(self.max, x)

    def as_dict(self) -> dict:
        mean = round(self.total / self.count, 2) if self.count else None
        return {"min": self.min, "mean": mean, "max": self.max}


@dataclass
class Stats:
    report: Report
    task: str = "sft"
    formats: Counter = field(default_factory=Counter)
    numbers: dict[str, Summary] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)

    def number(self, name: str, value: float) -> None:
        self.numbers.setdefault(name, Summary()).add(value)

    def as_dict(self) -> dict:
        r = self.report
        data: dict = {"file": r.path, "task": self.task}
        data.update({"rows": r.rows, "valid": r.rows - r.rejected, "invalid": r.rejected})
        if self.formats:
            data["formats"] = dict(self.formats)
        data.update(dict(self.counts))
        data.update({name: s.as_dict() for name, s in self.numbers.items()})
        if self.labels:
            data["labels"] = dict(self.labels.most_common())
        return data


def file_stats(
    path: str | os.PathLike, *, task: str | None = None, show_progress: bool | None = None, on_reject=None
) -> Stats:
    """Stats of a file or dataset reference read as `task`: by default sft, or for a LLaMA-Factory entry the
    task it declares itself for (ranking: dpo, a kto_tag column: kto, a prompt column alone: pt)."""
    task = task or open_source(path).natural_task() or "sft"
    source = task_source(path, task)
    normalize = task_schema(task)
    stats: Stats

    def observe(row, warn):
        example = normalize(row, warn)
        if task == "sft":
            stats.formats[formats.detect(row)] += 1
            _conversation(stats, example)
        else:
            _task_example(stats, example)

    stats = Stats(report=Report(path=source.name), task=task)
    stats.report = run(source, observe, show_progress=show_progress, on_reject=on_reject)
    return stats


def _conversation(stats: Stats, conv: dict) -> None:
    messages = conv["messages"]
    turns = sum(m["role"] == "user" for m in messages)
    stats.number("turns", turns)
    stats.counts["multi_turn"] += turns > 1
    stats.counts["with_system"] += messages[0]["role"] == "system"
    stats.counts["with_tools"] += bool(conv.get("tools")) or any(m.get("tool_calls") for m in messages)
    stats.number("prompt_chars", sum(len(m["content"] or "") for m in messages if m["role"] != "assistant"))
    stats.number("response_chars", len(messages[-1]["content"]))


def _task_example(stats: Stats, example: dict) -> None:
    if "label" in example:
        label = example["label"]
        if isinstance(label, float) or "text_1" in example:
            stats.number("label", float(label))
        else:
            for item in label if isinstance(label, list) else [label]:
                stats.labels[str(item)] += 1
    if "negatives" in example:
        stats.number("positives", len(example["positives"]))
        stats.number("negatives", len(example["negatives"]))
    for key in ("text", "query", "text_1", "text_2"):
        if isinstance(example.get(key), str):
            stats.number(f"{key}_chars", len(example[key]))
