import json

import pytest

from mg_data import io
from mg_data.errors import DataError
from mg_data.io import AtomicWriter, iter_rows, write_rows

ROWS = [
    {"prompt": "你好，世界" * 50, "response": "🦒长颈鹿"},
    {"prompt": "English", "response": "ok"},
    [1, "二"],
]


def test_jsonl_reports_bad_lines_and_keeps_going(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{"a": \n\xff\xfe\n{"a": "\xe5\x8f\xb0"}\n')
    items = list(iter_rows(p))
    assert items[0] == (1, {"a": 1}, None)
    assert items[1][0] == 3 and items[1][2].startswith("malformed JSON") and items[1][1] == '{"a": '
    assert items[2][0] == 4 and items[2][2].startswith("not valid UTF-8")
    assert items[3] == (5, {"a": "台"}, None)
    assert len(items) == 4  # the blank line is not a row


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_json_array_streams_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    # Tiny chunks split multi-byte characters and rows; the reader must stitch them back.
    monkeypatch.setattr(io, "_CHUNK", chunk)
    p = tmp_path / "a.json"
    p.write_text(json.dumps(ROWS, ensure_ascii=False, indent=2), encoding="utf-8")
    items = list(iter_rows(p))
    assert [row for _, row, _ in items] == ROWS
    assert [line for line, _, _ in items] == [2, 6, 10]


def test_json_array_errors_name_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_CHUNK", 16)
    p = tmp_path / "bad.json"
    p.write_text('[\n {"a": 1},\n {"a": 2,,}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.json:3: malformed JSON"):
        list(iter_rows(p))
    p.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(DataError, match="must hold a JSON array"):
        list(iter_rows(p))
    p.write_text("[]", encoding="utf-8")
    assert list(iter_rows(p)) == []


@pytest.mark.parametrize("suffix", ["jsonl", "json", "parquet"])
def test_write_then_read_round_trip_is_byte_exact_unicode(tmp_path, suffix):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "好闷啊，打开车窗 ✨"},
                {"role": "assistant", "content": "好的"},
            ],
            "id": i,
        }
        for i in range(25)
    ]
    p = tmp_path / f"out.{suffix}"
    assert write_rows(p, rows) == 25
    assert [r for _, r, _ in iter_rows(p)] == rows
    if suffix == "jsonl":
        assert "好闷啊，打开车窗 ✨".encode() in p.read_bytes()  # not \\u-escaped


def test_parquet_first_batch_all_null_column_gets_a_type(tmp_path):
    rows = [{"a": "x", "system": None}] * 3 + [{"a": "y", "system": "你是助手"}]
    p = tmp_path / "o.parquet"
    with AtomicWriter(p, parquet_batch=3) as w:
        for r in rows:
            w.write(r)
    assert [r for _, r, _ in iter_rows(p)] == [{"a": "x"}] * 3 + [rows[-1]]  # null reads as absent


def test_atomic_writer_keeps_previous_file_on_failure(tmp_path):
    p = tmp_path / "out.jsonl"
    p.write_text("previous\n", encoding="utf-8")
    with pytest.raises(RuntimeError), AtomicWriter(p) as w:
        w.write({"a": 1})
        raise RuntimeError("interrupted")
    assert p.read_text(encoding="utf-8") == "previous\n"
    assert list(tmp_path.iterdir()) == [p]  # no temp file left behind


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="unknown file type '.xml'"):
        list(iter_rows(tmp_path / "x.xml"))
    with pytest.raises(DataError, match="no such file"):
        list(iter_rows(tmp_path / "x.jsonl"))


def test_json_array_with_byte_order_mark(tmp_path):
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS, ensure_ascii=False).encode())
    assert [row for _, row, _ in iter_rows(p)] == ROWS


def test_nan_and_infinity_literals_are_row_errors_not_rows(tmp_path):
    p = tmp_path / "n.jsonl"
    p.write_text('{"a": 1}\n{"a": NaN}\n{"b": [1, -Infinity]}\n{"a": 2}\n', encoding="utf-8")
    items = list(iter_rows(p))
    assert [(n, e is None) for n, _, e in items] == [(1, True), (2, False), (3, False), (4, True)]
    assert items[1][1] == '{"a": NaN}' and items[1][2].startswith("NaN is not a number JSON allows")
    assert items[2][2].startswith("-Infinity is not a number JSON allows")


def test_json_array_non_finite_rows_across_chunk_boundaries(tmp_path, monkeypatch):
    """A failed decode of a cut-off chunk must not mark the next, finite, row."""
    import mg_data.io

    monkeypatch.setattr(mg_data.io, "_CHUNK", 7)
    p = tmp_path / "n.json"
    p.write_text('[{"a": 1.5},\n {"a": NaN},\n {"a": 2}]', encoding="utf-8")
    assert [(n, e is None) for n, _, e in iter_rows(p)] == [(1, True), (2, False), (3, True)]


def test_writers_refuse_nan_instead_of_writing_invalid_json(tmp_path):
    from mg_data.errors import RowError

    p = tmp_path / "o.jsonl"
    with pytest.raises(RowError, match="NaN or an infinite number"), AtomicWriter(p) as w:
        w.write({"a": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_atomic_writer_keeps_permission_bits_and_cleans_up_a_failed_commit(tmp_path):
    p = tmp_path / "o.parquet"
    write_rows(p, [{"a": 1}])
    p.chmod(0o644)
    write_rows(p, [{"a": 2}])
    assert p.stat().st_mode & 0o777 == 0o644
    # Rows of one batch whose column types clash fail inside commit (the last flush): one line, no temp.
    with pytest.raises(DataError, match=r"o.parquet: rows 1-2 do not fit one Parquet column type each"):
        write_rows(p, [{"a": 1}, {"a": "x"}])
    assert [r for _, r, _ in iter_rows(p)] == [{"a": 2}]
    assert list(tmp_path.iterdir()) == [p]
