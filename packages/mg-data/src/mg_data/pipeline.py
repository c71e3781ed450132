"""The one loop every file operation runs: read rows, transform each, write what passed, account for
what did not. Rows in = rows out + rejected, always; nothing is dropped without a reason."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from mg_data import formats, tasks
from mg_data.errors import DataError, Rejected, RowError
from mg_data.io import AtomicWriter
from mg_data.sources import DEFAULT_SEED, Source, input_files, open_source, split_ref
from mg_fs import refuse_same_files

Transform = Callable[[Any, Callable[[str], None]], Any]


@dataclass
class Report:
    path: str
    rows: int = 0
    written: int = 0
    rejected: int = 0
    warnings: list[str] = field(default_factory=list)
    output: str | None = None
    rejects_file: str | None = None

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def summary(self) -> str:
        text = f"{self.path}: {self.rows} rows, {self.rows - self.rejected} valid, {self.rejected} invalid"
        if self.output:
            text += f"; wrote {self.written} to {self.output}"
        if self.rejects_file and self.rejected:
            text += f"; rejects in {self.rejects_file}"
        return text


class InvalidRows(DataError):
    """Raised by the strict readers when a file has bad rows; carries every rejection."""

    def __init__(self, report: Report, rejected: list[Rejected]):
        self.report, self.rejected = report, rejected
        lines = [str(r) for r in rejected[:20]]
        if len(rejected) > 20:
            lines.append(f"... and {len(rejected) - 20} more")
        super().__init__("\n".join([*lines, report.summary()]))


def run(
    path: str | os.PathLike | Source,
    transform: Transform,
    *,
    output: str | os.PathLike | None = None,
    skip_invalid: bool = False,
    rejects: str | os.PathLike | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    show_progress: bool | None = None,
    max_samples: int | None = None,
    seed: int = DEFAULT_SEED,
) -> Report:
    """Transform every row of `path` (a file, a dataset reference or an open source; `max_samples` and `seed`
    as in mg_data.sources.open_source). Bad rows go to `on_reject`; with `skip_invalid` they are also written
    to `rejects` (default: beside the output) and the output is kept, else the output is not written."""
    source = _source(path, max_samples, seed)
    path = source.name
    report = Report(path=path, output=str(output) if output else None)
    if skip_invalid:
        report.rejects_file = rejects_path(path, output, rejects)
    # Before any file is opened: an output that is the input would be truncated before it is read.
    refuse_same_files(input_files(source, "input"), {"output": output, "rejects": report.rejects_file})

    def warn(message: str) -> None:
        if message not in report.warnings:
            report.warnings.append(message)
            if on_warning:
                on_warning(f"{path}: warning: {message}")

    with ExitStack() as stack:
        out = stack.enter_context(AtomicWriter(output)) if output else None
        bad = stack.enter_context(AtomicWriter(report.rejects_file)) if report.rejects_file else None
        for file, line, row, error in source.rows(show_progress=show_progress):
            report.rows += 1
            parsed = error is None
            if parsed:
                try:
                    result = transform(source.prepare(row, warn), warn)
                    if out:
                        out.write(result)  # raises RowError, before writing, for a row JSON cannot hold
                except RowError as e:
                    error = str(e)
            if error is not None:
                report.rejected += 1
                rejected = Rejected(file, line, error, row)
                if on_reject:
                    on_reject(rejected)
                if bad:
                    bad.write(_reject_record(line, error, row, parsed))
        report.written = out.count if out else 0
        if report.rejected and not skip_invalid:
            # Strict mode: a file with bad rows produces no output (the previous file, if any, stays).
            # There is no rejects writer in strict mode, so dropping the stack drops only `out`.
            if out:
                out.abort()
                stack.pop_all()
            report.written, report.output = 0, None
    return report


def _source(path: str | os.PathLike | Source, max_samples: int | None, seed: int) -> Source:
    if isinstance(path, str | os.PathLike):
        return open_source(path, max_samples=max_samples, seed=seed)
    return path


def rejects_path(path, output=None, rejects=None) -> str:
    """Where `--skip-invalid` sends bad rows: `rejects`, else beside the output, else beside the input (for
    a dataset reference: NAME.rejects.jsonl beside its dataset_info.json)."""
    if rejects or output:
        return str(rejects or f"{output}.rejects.jsonl")
    ref = split_ref(path)
    if ref is not None:
        return os.path.join(os.path.dirname(ref[0]), f"{ref[1]}.rejects.jsonl")
    return f"{path}.rejects.jsonl"


def _reject_record(line: int, reason: str, row: Any, parsed: bool) -> dict:
    if parsed:
        try:
            json.dumps(row, allow_nan=False)
        except ValueError:  # a row read from Parquet holding NaN: kept as the text Python's json writes
            return {"line": line, "reason": reason, "raw": json.dumps(row, ensure_ascii=False)}
        return {"line": line, "reason": reason, "row": row}
    return {"line": line, "reason": reason, "raw": row}


def conversion(to: str, from_: str = "auto") -> Transform:
    """Row transform: any conversation format (or `from_`) to format `to`."""
    target = formats.get(to)
    source = None if from_ == "auto" else formats.get(from_)

    def convert(row: Any, warn) -> dict:
        if formats.is_pairwise(row):
            reader = source or formats.get(formats.detect_pairwise(row))
            return target.from_pairwise(reader.to_pairwise(row))
        fmt = source
        if fmt is None:
            name = formats.detect(row)
            if name is None:
                raise RowError(
                    "not a conversation: expected alpaca (prompt/response), sharegpt (conversations) or messages"
                )
            fmt = formats.get(name)
        return target.from_conversation(fmt.to_conversation(row))

    return convert


def task_schema(task: str, from_: str = "auto") -> Transform:
    """Row transform: any layout the task reads to its normalized example."""
    module = tasks.get(task)
    if task == "sft" and from_ != "auto":
        return lambda row, warn: module.normalize(row, warn, fmt=from_)
    return module.normalize


def convert_file(input, output, *, to: str, from_: str = "auto", **kwargs) -> Report:
    """Convert a conversation file between alpaca, sharegpt and messages (see `run` for the options).
    Pairwise rows (chosen/rejected) convert as pairwise rows (mg_data.formats)."""
    return run(input, conversion(to, from_), output=output, **kwargs)


def validate_file(
    input,
    *,
    task: str,
    from_: str = "auto",
    output=None,
    max_samples: int | None = None,
    seed: int = DEFAULT_SEED,
    **kwargs,
) -> Report:
    """Check every row against a task's schema; with `output`, write the normalized examples."""
    source = task_source(input, task, max_samples=max_samples, seed=seed)
    return run(source, task_schema(task, from_), output=output, **kwargs)


def task_source(
    path: str | os.PathLike, task: str, *, max_samples: int | None = None, seed: int = DEFAULT_SEED
) -> Source:
    """The source of `path`, refused in one line when it declares itself unfit for `task` (a dataset entry
    whose ranking says otherwise, as LLaMA-Factory refuses it)."""
    source = open_source(path, max_samples=max_samples, seed=seed)
    source.check_task(task)
    return source


def iter_examples(
    path: str | os.PathLike,
    task: str,
    *,
    from_: str = "auto",
    max_samples: int | None = None,
    seed: int = DEFAULT_SEED,
) -> Iterator[dict]:
    """The normalized examples of a file or a dataset reference, for trainers and evaluators.

    `max_samples` keeps the first N rows, LLaMA-Factory's per-dataset cut (for an entry: after its split
    and num_samples); `seed` drives an entry's num_samples draw (LLaMA-Factory's training seed, 42 by
    default). The whole source is checked first, so a bad row fails before any work starts: raises
    InvalidRows listing every bad row as file:line."""
    source = task_source(path, task, max_samples=max_samples, seed=seed)
    rejected: list[Rejected] = []
    report = run(source, task_schema(task, from_), on_reject=rejected.append, show_progress=False)
    if rejected:
        raise InvalidRows(report, rejected)
    transform = task_schema(task, from_)
    for _, _, row, _ in source.rows(show_progress=False):
        yield transform(source.prepare(row, _quiet), _quiet)


def _quiet(message: str) -> None:
    """Warnings of a second pass over rows: the first pass said them."""
