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
from mg_data.io import AtomicWriter, iter_rows
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
    path: str | os.PathLike,
    transform: Transform,
    *,
    output: str | os.PathLike | None = None,
    skip_invalid: bool = False,
    rejects: str | os.PathLike | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    show_progress: bool | None = None,
) -> Report:
    """Transform every row of `path`. Bad rows go to `on_reject`; with `skip_invalid` they are also written
    to `rejects` (default: beside the output) and the output is kept, else the output is not written."""
    path = str(path)
    report = Report(path=path, output=str(output) if output else None)
    if skip_invalid:
        report.rejects_file = rejects_path(path, output, rejects)
    # Before any file is opened: an output that is the input would be truncated before it is read.
    refuse_same_files({"input": path}, {"output": output, "rejects": report.rejects_file})

    def warn(message: str) -> None:
        if message not in report.warnings:
            report.warnings.append(message)
            if on_warning:
                on_warning(f"{path}: warning: {message}")

    with ExitStack() as stack:
        out = stack.enter_context(AtomicWriter(output)) if output else None
        bad = stack.enter_context(AtomicWriter(report.rejects_file)) if report.rejects_file else None
        for line, row, error in iter_rows(path, show_progress=show_progress):
            report.rows += 1
            parsed = error is None
            if parsed:
                try:
                    result = transform(row, warn)
                    if out:
                        out.write(result)  # raises RowError, before writing, for a row JSON cannot hold
                except RowError as e:
                    error = str(e)
            if error is not None:
                report.rejected += 1
                rejected = Rejected(path, line, error, row)
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


def rejects_path(path, output=None, rejects=None) -> str:
    """Where `--skip-invalid` sends bad rows: `rejects`, else beside the output, else beside the input."""
    return str(rejects or f"{output or path}.rejects.jsonl")


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
    """Convert a conversation file between alpaca, sharegpt and messages (see `run` for the options)."""
    return run(input, conversion(to, from_), output=output, **kwargs)


def validate_file(input, *, task: str, from_: str = "auto", output=None, **kwargs) -> Report:
    """Check every row against a task's schema; with `output`, write the normalized examples."""
    return run(input, task_schema(task, from_), output=output, **kwargs)


def iter_examples(path: str | os.PathLike, task: str, *, from_: str = "auto") -> Iterator[dict]:
    """The normalized examples of a file, for trainers and evaluators. The whole file is checked first,
    so a bad row fails before any work starts: raises InvalidRows listing every bad row as file:line."""
    rejected: list[Rejected] = []
    report = run(path, task_schema(task, from_), on_reject=rejected.append, show_progress=False)
    if rejected:
        raise InvalidRows(report, rejected)
    transform = task_schema(task, from_)
    for _, row, _ in iter_rows(path, show_progress=False):
        yield transform(row, lambda message: None)
