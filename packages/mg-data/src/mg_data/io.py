"""Streaming readers for JSONL, JSON, Parquet, CSV and text, and atomic writers for the first three.

Readers yield `(line, row, error)`: `line` is 1-based (the line in a text file, the row number in Parquet),
`row` the parsed value (or, with an error, the raw text of the line), `error` None or why the line could
not be parsed. Bad lines never stop a
read, so every problem in a file can be reported in one pass. Memory stays flat: JSONL, CSV and text are
read a line at a time, a JSON array an element at a time, Parquet a record batch at a time.

CSV and text are read (LLaMA-Factory's datasets come in them) but not written: a CSV cell holds no list or
object, a text line no fields. A CSV row is an object of its non-empty cells, all strings (an empty cell is
absent, as a null is in Parquet); a text line is `{"text": line}`, the row `datasets` makes of it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from mg_data.errors import DataError, RowError
from mg_fs import AtomicFile

FILE_TYPES = ("jsonl", "json", "parquet", "csv", "txt")
WRITE_TYPES = ("jsonl", "json", "parquet")
_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20
# json.dumps/loads with options build a new encoder per call; on millions of rows one shared one is faster.
# NaN and infinities are not JSON (and poison training): never written, and a row error when read.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode

Item = tuple[int, Any, str | None]


def file_type(path: str | os.PathLike) -> str:
    """The file type from the name: .jsonl/.ndjson, .json, .parquet, .csv, .txt."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".json", ".parquet", ".csv", ".txt"):
        return suffix[1:]
    raise DataError(
        f"{path}: unknown file type {suffix or '(none)'!r}; use .jsonl, .json, .parquet, .csv or .txt"
    )


def output_type(path: str | os.PathLike) -> str:
    """The file type to write from the name: .jsonl, .json or .parquet."""
    kind = file_type(path)
    if kind not in WRITE_TYPES:
        raise DataError(f"{path}: mg-data reads .{kind} but does not write it; use .jsonl, .json or .parquet")
    return kind


def _progress(total: int, unit: str, path: str, show: bool | None) -> tqdm:
    # disable=None lets tqdm turn itself off when stderr is not a terminal (CI logs, pipes).
    return tqdm(
        total=total,
        unit=unit,
        unit_scale=True,
        desc=Path(path).name,
        disable=None if show is None else not show,
        leave=False,
        dynamic_ncols=True,
    )


def iter_rows(
    path: str | os.PathLike,
    *,
    show_progress: bool | None = None,
    kind: str | None = None,
    blank_lines: bool = False,
) -> Iterator[Item]:
    """Yield `(line, row, error)` for every row of a JSONL, JSON, Parquet, CSV or text file.

    A LLaMA-Factory dataset reference (`DIR/dataset_info.json#NAME`) is read as that entry; see
    mg_data.sources (rows of a folder entry come from several files: `iter_source_rows` names each row's).
    `kind` overrides the type the name says; `blank_lines` yields a text file's blank lines as empty texts.
    """
    from mg_data.sources import is_ref, iter_source_rows

    if is_ref(path):
        for _, line, row, error in iter_source_rows(path, show_progress=show_progress):
            yield line, row, error
        return
    path = str(path)
    kind = kind or file_type(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    if kind == "parquet":
        yield from _iter_parquet(path, show_progress)
        return
    with open(path, "rb") as f, _progress(os.path.getsize(path), "B", path, show_progress) as bar:
        if kind == "jsonl":
            yield from _iter_jsonl(f, bar)
        elif kind == "json":
            yield from _iter_json_array(f, path, bar)
        elif kind == "csv":
            yield from _iter_csv(f, path, bar)
        else:
            yield from _iter_text(f, bar, blank_lines)


def json_layout(path: str | os.PathLike) -> str:
    """The layout of a JSON file from its first character: `[` is one array of rows ("json"), anything else
    JSON lines ("jsonl"). For LLaMA-Factory's files: `datasets` reads both layouts under both names, so a
    .json file of JSON lines is common there."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if head.startswith(b"[") else "jsonl"


def _decoder() -> tuple[Any, list[str]]:
    """A JSON decoder and the list where it notes each NaN/Infinity/-Infinity it met (Python's json reads
    them; JSON has none). Noting instead of raising costs nothing on rows without them."""
    seen: list[str] = []

    def note(name: str) -> float:
        seen.append(name)
        return float(name)

    return json.JSONDecoder(parse_constant=note), seen


def _non_finite(seen: list[str]) -> str:
    found = seen[0]
    seen.clear()
    return f"{found} is not a number JSON allows: non-finite values are not valid data (use a finite number)"


def _iter_jsonl(f: IO[bytes], bar: tqdm) -> Iterator[Item]:
    decoder, seen = _decoder()
    decode = decoder.decode
    for n, line in enumerate(f, 1):
        bar.update(len(line))
        if n == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            continue  # blank lines are not rows
        try:
            row = decode(line.decode("utf-8"))
        except UnicodeDecodeError as e:
            yield n, _raw(line), f"not valid UTF-8 ({e.reason} at byte {e.start})"
        except json.JSONDecodeError as e:
            yield n, _raw(line), f"malformed JSON: {e.msg} at column {e.colno}"
        else:
            yield (n, _raw(line), _non_finite(seen)) if seen else (n, row, None)


def _raw(line: bytes) -> str:
    """The text of an unparsable line, for the rejects file."""
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


def _iter_text(f: IO[bytes], bar: tqdm, blank_lines: bool) -> Iterator[Item]:
    for n, line in enumerate(f, 1):
        bar.update(len(line))
        if n == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        try:
            text = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            yield n, _raw(line), f"not valid UTF-8 ({e.reason} at byte {e.start})"
            continue
        if text.strip() or blank_lines:
            yield n, {"text": text}, None


def _iter_csv(f: IO[bytes], path: str, bar: tqdm) -> Iterator[Item]:
    """Rows of a CSV file with a header line. A record may span lines (a quoted newline): its line is the
    first. The whole file is unusable when the header is (no header, a column named twice)."""
    lines = _decoded_lines(f, path, bar)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header):
            twice = sorted({name for name in header if header.count(name) > 1})
            raise DataError(f"{path}:1: the header names column {twice[0]!r} twice")
        end = reader.line_num
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue  # a blank line
            if len(record) > len(header):
                yield start, ",".join(record), f"{len(record)} fields, but the header has {len(header)}"
                continue
            yield (
                start,
                {name: value for name, value in zip(header, record, strict=False) if value != ""},
                None,
            )
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None


def _decoded_lines(f: IO[bytes], path: str, bar: tqdm) -> Iterator[str]:
    for n, line in enumerate(f, 1):
        bar.update(len(line))
        if n == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{n}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


def _iter_json_array(f: IO[bytes], path: str, bar: tqdm) -> Iterator[Item]:
    """Decode a top-level JSON array element by element, reading the file in chunks."""
    decoder, seen = _decoder()
    text = ""
    pending = b""  # bytes of a multi-byte character split by a chunk boundary
    line, pos, eof = 1, 0, False

    def more() -> bool:
        nonlocal text, pos, pending, eof
        if eof:
            return False
        chunk = f.read(_CHUNK)
        bar.update(len(chunk))
        if not chunk:
            eof = True
            return False
        data = pending + chunk
        cut = len(data)
        while cut > 0 and (data[cut - 1] & 0xC0) == 0x80:
            cut -= 1  # step back over continuation bytes...
        if cut > 0 and data[cut - 1] >= 0xC0:
            cut -= 1  # ...and the lead byte of the unfinished character
        else:
            cut = len(data)
        pending = data[cut:]
        try:
            text = text[pos:] + data[:cut].decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not valid UTF-8 ({e.reason})") from None
        pos = 0
        return True

    def skip_ws() -> None:
        nonlocal pos, line
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                line += text[pos] == "\n"
                pos += 1
            if pos < len(text) or not more():
                return

    more()
    if text.startswith("\ufeff"):
        pos = 1  # a UTF-8 byte order mark
    skip_ws()
    if pos >= len(text) or text[pos] != "[":
        raise DataError(
            f"{path}:{line}: a .json file must hold a JSON array of rows (use .jsonl for one row per line)"
        )
    pos += 1
    first = True
    while True:
        skip_ws()
        if pos >= len(text):
            raise DataError(f"{path}:{line}: unexpected end of file inside the JSON array")
        if text[pos] == "]":
            return
        if not first:
            if text[pos] != ",":
                raise DataError(f"{path}:{line}: expected ',' or ']' between rows")
            pos += 1
            skip_ws()
        first = False
        while True:
            seen.clear()  # what a failed try on a cut-off chunk noted does not count
            try:
                value, end = decoder.raw_decode(text, pos)
                break
            except json.JSONDecodeError as e:
                if not more():  # a complete document that still fails is malformed, not truncated
                    where = line + text.count("\n", pos, e.pos)
                    raise DataError(f"{path}:{where}: malformed JSON: {e.msg}") from None
        yield (line, text[pos:end], _non_finite(seen)) if seen else (line, value, None)
        line += text.count("\n", pos, end)
        pos = end


def _iter_parquet(path: str, show_progress: bool | None) -> Iterator[Item]:
    pq = _pyarrow_parquet(path)
    import pyarrow as pa

    n = 0
    try:
        pf = pq.ParquetFile(path)
        _check_json_columns(pf.schema_arrow, path)
        with _progress(pf.metadata.num_rows, "rows", path, show_progress) as bar:
            for batch in pf.iter_batches(batch_size=4096):
                for row in batch.to_pylist():
                    n += 1
                    yield n, _drop_nulls(row), None
                bar.update(batch.num_rows)
    except (pa.ArrowException, OSError) as e:  # truncated or not Parquet at all; ArrowIOError is an OSError
        where = f"{path}:{n + 1}" if n else path
        raise DataError(f"{where}: not a readable Parquet file ({_first_line(e)})") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_json_columns(schema, path: str) -> None:
    """Rows become JSON values: a column of another kind (timestamps, dates, decimals, bytes, maps) is
    named before any row is read, instead of failing on the first row written."""
    for field in schema:
        bad = _non_json_type(field.type)
        if bad is not None:
            raise DataError(
                f"{path}: column {field.name!r} is {bad}, which has no JSON form; "
                "cast it to string (or drop it) before reading"
            )


def _non_json_type(t):
    """None when every value of Arrow type `t` reads as a JSON value, else the offending type."""
    import pyarrow as pa

    types = pa.types
    if types.is_float16(t):  # reads as numpy.float16, which json cannot write
        return t
    if (
        types.is_string(t)
        or types.is_large_string(t)
        or types.is_integer(t)
        or types.is_floating(t)
        or types.is_boolean(t)
        or types.is_null(t)
    ):
        return None
    if hasattr(types, "is_string_view") and types.is_string_view(t):
        return None
    if types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t):
        return _non_json_type(t.value_type)
    if types.is_struct(t):
        for i in range(t.num_fields):
            bad = _non_json_type(t.field(i).type)
            if bad is not None:
                return bad
        return None
    if types.is_dictionary(t):  # pandas categoricals
        return _non_json_type(t.value_type)
    return t


def _drop_nulls(value: Any) -> Any:
    """Parquet gives every row every column (and every struct every field), null where the row had none.
    A null there means "absent", so drop it: the row reads back as it was written."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _pyarrow_parquet(path: str):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: Parquet needs pyarrow: pip install 'mg-data[parquet]'") from None
    return pq


class AtomicWriter:
    """Write rows to a temp file beside the target and rename it into place on success (mg_fs.AtomicFile:
    its temp naming, stale-temp cleanup, kept permission bits and symlinks written through).

    An interrupted or failed run leaves the previous file (or no file) behind, never half a file.
    """

    def __init__(self, path: str | os.PathLike, *, parquet_batch: int = 10_000):
        self.path = str(path)
        self.kind = output_type(self.path)
        self.count = 0
        self._parquet_batch = parquet_batch
        if self.kind == "parquet":
            _pyarrow_parquet(self.path)  # no pyarrow: one line now, not after every row was read
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._file = AtomicFile(self.path)
        self._f = self._file.file
        self._buffer: list[dict] = []
        self._pq_writer: Any = None  # pyarrow.parquet.ParquetWriter from the first flush (pyarrow is untyped)
        if self.kind == "json":
            self._f.write(b"[")

    def write(self, row: Any) -> None:
        if self.kind == "parquet":
            self._buffer.append(row)
            if len(self._buffer) >= self._parquet_batch:
                self._flush_parquet()
        else:
            try:
                data = _encode(row).encode("utf-8")
            except ValueError:  # only NaN/Infinity: every value of a JSON-read row is encodable
                raise RowError(
                    "the row holds NaN or an infinite number, which JSON cannot hold (use a finite number)"
                ) from None
            if self.kind == "jsonl":
                self._f.write(data + b"\n")
            else:
                self._f.write((b"\n" if self.count == 0 else b",\n") + data)
        self.count += 1

    def _flush_parquet(self) -> None:
        if not self._buffer:
            return
        import pyarrow as pa

        pq = _pyarrow_parquet(self.path)
        first = self.count - len(self._buffer) + 1
        try:
            if self._pq_writer is None:
                table = pa.Table.from_pylist(self._buffer)
                # A column that is null in every row of the first batch gets a real type, so later rows fit.
                schema = pa.schema(
                    [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
                )
                table = table.cast(schema)
                self._pq_writer = pq.ParquetWriter(self._f, schema)
            else:
                table = pa.Table.from_pylist(self._buffer, schema=self._pq_writer.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise DataError(
                f"{self.path}: rows {first}-{self.count} do not fit one Parquet column type each "
                f"({_first_line(e)}); write .jsonl instead"
            ) from None
        self._pq_writer.write_table(table)
        self._buffer = []

    def commit(self) -> None:
        """Finish the file and rename it into place; on any error the temp file is removed."""
        try:
            if self.kind == "parquet":
                self._flush_parquet()
                if self._pq_writer is None:  # no rows: still write a valid (empty) file
                    import pyarrow as pa

                    self._pq_writer = _pyarrow_parquet(self.path).ParquetWriter(self._f, pa.schema([]))
                self._pq_writer.close()
            elif self.kind == "json":
                self._f.write(b"\n]\n" if self.count else b"]\n")
        except BaseException:
            self.abort()
            raise
        self._file.commit()

    def abort(self) -> None:
        self._file.abort()

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_rows(path: str | os.PathLike, rows) -> int:
    """Write an iterable of rows atomically; return how many were written."""
    with AtomicWriter(path) as w:
        for row in rows:
            w.write(row)
    return w.count
