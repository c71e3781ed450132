"""An entry's rows, selected as LLaMA-Factory 0.9.5's loader selects them (data/loader.py,
_load_single_dataset): every file of file_name (a file, or each file of a folder), then `split`, then
`num_samples`, then the run's `max_samples`; each row then read through the entry's columns and tags.

Where mg-data differs, on purpose: a folder's files are read in name order (LLaMA-Factory takes
os.listdir's order, which the file system decides) and its hidden files are skipped (.DS_Store would
stop LLaMA-Factory); a blank line of a .txt file is not a text (LLaMA-Factory trains it as an empty one,
an end-of-text token alone), though it still counts as a row for split, num_samples and max_samples, so
the same lines are picked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any

from mg_data.io import iter_rows, json_layout
from mg_data.llamafactory.info import FILE_KINDS, Entry, load_entry
from mg_data.llamafactory.rows import Mapper, mapper
from mg_data.llamafactory.sampling import sample_indices
from mg_data.sources import DEFAULT_SEED, SourceItem, Warn

PAIRWISE_TASKS = ("rm", "dpo")


def open_entry(
    info_path: str, name: str, *, max_samples: int | None = None, seed: int = DEFAULT_SEED
) -> EntrySource:
    entry = load_entry(info_path, name)
    paths, kind = entry_files(entry)
    return EntrySource(entry, paths, kind, max_samples, seed)


def entry_files(entry: Entry) -> tuple[list[str], str]:
    """The data files of an entry and their one type (json, csv, parquet or txt)."""
    path = entry.path
    if os.path.isdir(path):
        paths = [os.path.join(path, name) for name in sorted(os.listdir(path)) if not name.startswith(".")]
        for p in paths:
            if os.path.isdir(p):
                raise entry.error(f"{p} is a folder: file_name's folder must hold the data files themselves")
        if not paths:
            raise entry.error(f"file_name {entry.file_name!r}: the folder {path} holds no data files")
    elif os.path.isfile(path):
        paths = [path]
    else:
        raise entry.error(f"file_name {entry.file_name!r}: {path} not found")
    kinds = {p: _kind(entry, p) for p in paths}
    first = paths[0]
    for p in paths[1:]:
        if kinds[p] != kinds[first]:
            raise entry.error(
                f"{first} and {p} are of different types; a dataset's files are of one type "
                "(LLaMA-Factory requires it too)"
            )
    return paths, kinds[first]


def _kind(entry: Entry, path: str) -> str:
    suffix = os.path.splitext(path)[1][1:]
    kind = FILE_KINDS.get(suffix)
    if kind is None:
        raise entry.error(f"{path}: LLaMA-Factory reads .json, .jsonl, .csv, .parquet, .txt and .arrow files")
    if kind == "arrow":
        raise entry.error(f"{path}: Arrow files are not read by mg-data; save the data as .parquet or .jsonl")
    return kind


@dataclass
class EntrySource:
    """The rows of one dataset_info.json entry (a mg_data.sources.Source)."""

    entry: Entry
    paths: list[str]
    kind: str
    max_samples: int | None = None
    seed: int = DEFAULT_SEED

    @property
    def name(self) -> str:
        return f"{self.entry.info_path}#{self.entry.name}"

    @property
    def files(self) -> list[str]:
        return [self.entry.info_path, *self.paths]

    def rows(self, *, show_progress: bool | None = None) -> Iterator[SourceItem]:
        for item in self._selected(show_progress):
            _, _, row, error = item
            if error is None and self.kind == "txt" and not row["text"].strip():
                continue  # a blank line (see the module's docstring)
            yield item

    def prepare(self, row: Any, warn: Warn) -> Any:
        return self._map_row(row, warn)

    @cached_property
    def _map_row(self) -> Mapper:
        return mapper(self.entry, self.kind)

    def check_task(self, task: str) -> None:
        entry = self.entry
        if task in PAIRWISE_TASKS and not entry.ranking:
            raise entry.error(
                f"ranking is not true, and {task} reads pairwise rows (a chosen and a rejected answer); "
                "LLaMA-Factory refuses it too"
            )
        if task not in PAIRWISE_TASKS and entry.ranking:
            raise entry.error(f"ranking is true: a pairwise dataset is read by rm or dpo, not {task}")
        if task == "kto" and entry.columns["kto_tag"] is None:
            raise entry.error(
                "kto needs columns.kto_tag, the column that says whether each answer is desirable"
            )

    def natural_task(self) -> str:
        entry = self.entry
        if entry.ranking:
            return "dpo"
        if entry.columns["kto_tag"] is not None:
            return "kto"
        if entry.formatting == "alpaca" and entry.columns["response"] is None:
            return "pt"  # a prompt column alone is text to pre-train on (c4_demo, wiki_demo)
        return "sft"

    def _raw(self, show_progress: bool | None) -> Iterator[SourceItem]:
        """Every row of every file, blank text lines included (they are rows to LLaMA-Factory)."""
        for path in self.paths:
            kind = json_layout(path) if self.kind == "json" else self.kind
            for line, row, error in iter_rows(path, kind=kind, blank_lines=True, show_progress=show_progress):
                yield path, line, row, error

    def _selected(self, show_progress: bool | None) -> Iterator[SourceItem]:
        entry = self.entry
        if entry.split_is_all() and entry.num_samples is None:
            yield from islice(self._raw(show_progress), self.max_samples)
            return
        # A slice or a draw needs the number of rows first: one pass to count, one to read.
        start, stop = entry.split_slice(sum(1 for _ in self._raw(False)))
        total = max(stop - start, 0)
        order: Sequence[int] = range(start, start + total)
        if entry.num_samples is not None:
            if total == 0:
                raise entry.error(
                    f"num_samples {entry.num_samples}: split {entry.split!r} holds no rows to draw from"
                )
            order = [start + i for i in sample_indices(total, entry.num_samples, self.seed)]
        if self.max_samples is not None:
            order = order[: self.max_samples]
        yield from _pick(self._raw(show_progress), order)


def _pick(items: Iterable[SourceItem], order: Sequence[int]) -> Iterator[SourceItem]:
    """The items at the positions `order` lists, in that order (a position may repeat)."""
    if isinstance(order, range):
        yield from islice(items, order.start, order.stop)
        return
    wanted = set(order)
    kept = {}
    for i, item in enumerate(items):
        if i in wanted:
            kept[i] = item
    for i in order:
        yield kept[i]
