"""Where rows come from: a data file, or an entry of LLaMA-Factory's dataset_info.json.

Every mg-data entry point that takes a path (iter_rows, iter_examples, validate, convert, stats, preview, and
the CLI) also takes a dataset reference, `DIR/dataset_info.json#NAME`, and reads that entry as LLaMA-Factory
does (mg_data.llamafactory). A source yields `(file, line, row, error)`: `file` is the real data file the row
is in, since an entry's file_name may be a folder of several. Its rows are as stored; `source.prepare(row)`
reads one into the layout mg-data's formats and tasks read (for an entry: through its columns and tags), so
a row that cannot be is reported, in the rejects file too, as the user wrote it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from mg_data.errors import DataError, RowError
from mg_data.io import iter_rows

INFO_FILE = "dataset_info.json"
_MARK = INFO_FILE + "#"
# LLaMA-Factory's default training seed (transformers' TrainingArguments.seed), which also seeds the numpy
# draw behind an entry's num_samples: with it, mg-data picks the rows LLaMA-Factory picks.
DEFAULT_SEED = 42

SourceItem = tuple[str, int, Any, str | None]
Warn = Callable[[str], None]


def dataset_ref(dataset_dir: str | os.PathLike, name: str) -> str:
    """The reference to dataset `name` of the dataset_info.json in `dataset_dir`."""
    return f"{os.path.join(os.fspath(dataset_dir), INFO_FILE)}#{name}"


def split_ref(path: str | os.PathLike) -> tuple[str, str] | None:
    """(dataset_info.json path, dataset name) when `path` is a reference, else None."""
    text = os.fspath(path)
    start = 0
    while (i := text.find(_MARK, start)) >= 0:
        # only a file named exactly dataset_info.json: "my_dataset_info.json#x" is a path
        if i == 0 or text[i - 1] in (os.sep, "/"):
            return text[: i + len(INFO_FILE)], text[i + len(_MARK) :]
        start = i + 1
    return None


def is_ref(path: Any) -> bool:
    return isinstance(path, str | os.PathLike) and split_ref(path) is not None


class Source(Protocol):
    @property
    def name(self) -> str:
        """What the user gave: the path or the reference."""
        ...

    @property
    def files(self) -> list[str]:
        """Every file the rows are read from (and, for an entry, its dataset_info.json)."""
        ...

    def rows(self, *, show_progress: bool | None = None) -> Iterator[SourceItem]:
        """Every row as stored (`row` the raw text of the line when `error` says it did not parse)."""
        ...

    def prepare(self, row: Any, warn: Warn) -> Any:
        """A parsed row in the layout mg-data reads; raises RowError when it cannot be."""
        ...

    def check_task(self, task: str) -> None:
        """Raise DataError when the source cannot be read as `task` (an entry whose ranking says otherwise)."""
        ...

    def natural_task(self) -> str | None:
        """The task the source declares itself for, if it does (a pairwise entry: dpo)."""
        ...


@dataclass
class FileSource:
    """One data file, read whole or its first `max_samples` rows."""

    name: str
    max_samples: int | None = None

    @property
    def files(self) -> list[str]:
        return [self.name]

    def rows(self, *, show_progress: bool | None = None) -> Iterator[SourceItem]:
        items = iter_rows(self.name, show_progress=show_progress)
        for line, row, error in islice(items, self.max_samples):
            yield self.name, line, row, error

    def prepare(self, row: Any, warn: Warn) -> Any:
        return row

    def check_task(self, task: str) -> None:
        return None

    def natural_task(self) -> str | None:
        return None


@dataclass
class RowsSource:
    """Rows given in memory (write_dataset's rows): a bad one is reported as `<rows>:N` (the Nth row, from
    1). An iterator is read once."""

    rows_given: Iterable[Any]
    name: str = "<rows>"

    @property
    def files(self) -> list[str]:
        return []

    def rows(self, *, show_progress: bool | None = None) -> Iterator[SourceItem]:
        for n, row in enumerate(self.rows_given, 1):
            yield self.name, n, row, None

    def prepare(self, row: Any, warn: Warn) -> Any:
        return row

    def check_task(self, task: str) -> None:
        return None

    def natural_task(self) -> str | None:
        return None


def input_files(source: Source, label: str) -> dict[str, str]:
    """The files a source reads, named for a same-file check's message (`label`, `label file 2`, ...)."""
    return {label if i == 0 else f"{label} file {i + 1}": path for i, path in enumerate(source.files)}


def open_source(
    path: str | os.PathLike, *, max_samples: int | None = None, seed: int = DEFAULT_SEED
) -> Source:
    """The rows of a file or a dataset reference. `max_samples` keeps the first N rows, as LLaMA-Factory's
    `max_samples` does per dataset (for an entry: after its split and num_samples); `seed` drives an entry's
    num_samples draw. Errors in the reference itself (no such entry, a hub-only one) are raised here."""
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, int)):
        raise DataError(f"max_samples must be a whole number, got {max_samples!r}")
    if max_samples is not None and max_samples < 1:
        raise DataError(f"max_samples must be at least 1, got {max_samples}")
    ref = split_ref(path)
    if ref is None:
        return FileSource(os.fspath(path), max_samples)
    # Imported here: the LLaMA-Factory reader builds on this module and on mg_data.io.
    from mg_data.llamafactory.reader import open_entry

    return open_entry(*ref, max_samples=max_samples, seed=seed)


def prepared_rows(
    source: Source, *, show_progress: bool | None = None, warn: Warn | None = None
) -> Iterator[SourceItem]:
    """`(file, line, row, error)` for every row of a source, each prepared (see Source.prepare): a row that
    cannot be is yielded as stored, with the reason as its error."""
    tell = warn or (lambda message: None)
    for file, line, row, error in source.rows(show_progress=show_progress):
        if error is None:
            try:
                row = source.prepare(row, tell)
            except RowError as e:
                error = str(e)
        yield file, line, row, error


def iter_source_rows(
    path: str | os.PathLike,
    *,
    max_samples: int | None = None,
    seed: int = DEFAULT_SEED,
    show_progress: bool | None = None,
) -> Iterator[SourceItem]:
    """`(file, line, row, error)` for every row of a file or a dataset reference (an entry's rows read
    through its columns and tags)."""
    yield from prepared_rows(
        open_source(path, max_samples=max_samples, seed=seed), show_progress=show_progress
    )
