"""The mg-data command, run as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import mg_data, read_jsonl, write_jsonl


def test_convert_alpaca_to_sharegpt_and_back(tmp_path, samples):
    src = write_jsonl(tmp_path / "in.jsonl", samples["alpaca"])
    r = mg_data("convert", src, tmp_path / "sg.json", "--to", "sharegpt")
    assert r.returncode == 0, r.stderr
    assert "3 rows, 3 valid, 0 invalid; wrote 3" in r.stderr
    r = mg_data(
        "convert", tmp_path / "sg.json", tmp_path / "back.jsonl", "--to", "alpaca", "--from", "sharegpt"
    )
    assert r.returncode == 0, r.stderr
    back = read_jsonl(tmp_path / "back.jsonl")
    assert back[0] == samples["alpaca"][0]
    assert back[2] == samples["alpaca"][2]


def test_bad_rows_are_listed_by_line_and_nothing_is_written(tmp_path, samples):
    rows = [
        samples["alpaca"][0],
        "{broken",
        {"prompt": "q", "response": ""},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
        samples["alpaca"][2],
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    r = mg_data("convert", src, out, "--to", "messages")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{src}:2: malformed JSON")
    assert lines[1] == f"{src}:3: empty response: the last assistant message has no content"
    assert lines[2] == f"{src}:4: messages[1]: roles must alternate, but user follows user"
    assert lines[3] == f"{src}: 5 rows, 2 valid, 3 invalid"
    assert out.read_text(encoding="utf-8") == "keep me\n"  # the previous output survives


def test_skip_invalid_accounts_for_every_row(tmp_path, samples):
    rows = [*samples["sharegpt"], "nope", {"prompt": 1, "response": "x"}, *samples["messages"]]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.parquet"
    r = mg_data("convert", src, out, "--to", "sharegpt", "--skip-invalid")
    assert r.returncode == 0, r.stderr
    from mg_data.io import iter_rows

    written = [row for _, row, _ in iter_rows(out)]
    rejects = read_jsonl(tmp_path / "out.parquet.rejects.jsonl")
    assert len(written) + len(rejects) == len(rows)  # rows in = rows out + rejects
    assert [(x["line"], x["reason"]) for x in rejects] == [
        (3, "malformed JSON: Expecting value at column 1"),
        (4, "prompt must be a string, got int"),
    ]
    assert rejects[0]["raw"] == "nope" and rejects[1]["row"] == {"prompt": 1, "response": "x"}
    assert written[:2] == samples["sharegpt"]


def test_validate_task_and_normalized_output(tmp_path):
    rows = [
        {"query": "如何退货", "pos": ["订单页申请退货"], "neg": ["运费说明"]},
        {"anchor": "a", "positive": "p"},
        {"query": "q"},
    ]
    src = write_jsonl(tmp_path / "e.jsonl", rows)
    r = mg_data("validate", src, "--task", "embed")
    assert r.returncode == 1
    assert f"{src}:3: missing field 'positive' (or 'positives', 'pos')" in r.stderr
    r = mg_data("validate", src, "--task", "embed", "-o", tmp_path / "clean.jsonl", "--skip-invalid")
    assert r.returncode == 0
    assert read_jsonl(tmp_path / "clean.jsonl") == [
        {"query": "如何退货", "positives": ["订单页申请退货"], "negatives": ["运费说明"]},
        {"query": "a", "positives": ["p"], "negatives": []},
    ]
    assert len(read_jsonl(tmp_path / "clean.jsonl.rejects.jsonl")) == 1


def test_validate_warns_once_about_choosen(tmp_path):
    rows = [{"prompt": f"p{i}", "choosen": "good", "rejected": "bad"} for i in range(3)]
    r = mg_data("validate", write_jsonl(tmp_path / "rm.jsonl", rows), "--task", "rm")
    assert r.returncode == 0
    assert r.stderr.count("warning: field 'choosen' is read as 'chosen'") == 1


def test_user_errors_are_one_line(tmp_path):
    r = mg_data("convert", tmp_path / "missing.jsonl", tmp_path / "o.jsonl", "--to", "messages")
    assert (r.returncode, r.stderr.strip()) == (2, f"error: {tmp_path / 'missing.jsonl'}: no such file")
    (tmp_path / "x.jsonl").write_text("{}\n")
    r = mg_data("convert", tmp_path / "x.jsonl", tmp_path / "o.xml", "--to", "messages")
    assert r.returncode == 2 and "unknown file type '.xml'" in r.stderr and "Traceback" not in r.stderr
    r = mg_data("convert", tmp_path / "x.jsonl", tmp_path / "o.csv", "--to", "messages")
    assert (
        r.stderr
        == f"error: {tmp_path / 'o.csv'}: mg-data reads .csv but does not write it; use .jsonl, .json or .parquet\n"
    )
    r = mg_data("convert", tmp_path / "x.jsonl", tmp_path / "o.jsonl", "--to", "yaml")
    assert r.returncode == 2 and "Invalid value for '--to'" in r.stderr


def test_stats_json(tmp_path, samples):
    src = write_jsonl(
        tmp_path / "in.jsonl", [*samples["alpaca"], *samples["sharegpt"], *samples["messages"], "x"]
    )
    r = mg_data("stats", src, "--json")
    assert r.returncode == 0
    stats = json.loads(r.stdout)
    assert stats["rows"] == 8 and stats["invalid"] == 1
    assert stats["formats"] == {"alpaca": 3, "sharegpt": 2, "messages": 2}
    assert stats["multi_turn"] == 2 and stats["with_tools"] == 2 and stats["with_system"] == 3
    assert stats["turns"] == {"min": 1, "mean": 1.43, "max": 3}  # (3+1+1 + 1+2 + 1+1) / 7


def test_stats_classify_labels(tmp_path):
    rows = [{"text": "t", "label": lab} for lab in ["退货", "退货", "物流"]]
    r = mg_data("stats", write_jsonl(tmp_path / "c.jsonl", rows), "--task", "classify", "--json")
    assert json.loads(r.stdout)["labels"] == {"退货": 2, "物流": 1}


def test_kill_mid_conversion_leaves_no_half_file(tmp_path, samples):
    src = tmp_path / "big.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        line = json.dumps(samples["sharegpt"][0], ensure_ascii=False) + "\n"
        f.writelines(line for _ in range(400_000))
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mg_data", "convert", str(src), str(out), "--to", "messages"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while not any(p.name.startswith(".out.jsonl.") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let it write part of the output
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert out.read_text(encoding="utf-8") == "previous\n"


def test_sigterm_mid_conversion_leaves_no_temp_and_the_old_output(tmp_path, samples):
    src = tmp_path / "big.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        line = json.dumps(samples["sharegpt"][0], ensure_ascii=False) + "\n"
        f.writelines(line for _ in range(400_000))
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    out.chmod(0o644)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mg_data", "convert", str(src), str(out), "--to", "messages"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while not any(p.name.startswith(".out.jsonl.") for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.terminate()
    assert proc.wait(timeout=60) == 143
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl", "out.jsonl"]
    # A finished run replaces the file and keeps its permission bits (not mkstemp's 0600).
    small = write_jsonl(tmp_path / "small.jsonl", samples["sharegpt"])
    assert mg_data("convert", small, out, "--to", "messages").returncode == 0
    assert len(read_jsonl(out)) == 2 and oct(out.stat().st_mode & 0o777) == oct(0o644)


def test_the_next_run_removes_what_a_killed_run_left(tmp_path, samples):
    out = tmp_path / "out.jsonl"
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # a process that is gone, as after kill -9
    stale = tmp_path / f".out.jsonl.{killed.pid}.0123abcd.mg-tmp"
    stale.write_bytes(b"x" * 1000)
    src = write_jsonl(tmp_path / "in.jsonl", samples["alpaca"])
    r = mg_data("convert", src, out, "--to", "messages")
    assert r.returncode == 0, r.stderr
    assert not stale.exists()


def unchanged(path, before: bytes) -> bool:
    return path.read_bytes() == before


def test_an_output_that_is_the_input_is_refused_before_anything_is_written(tmp_path):
    src = write_jsonl(tmp_path / "x.jsonl", [{"text_1": "a", "text_2": "b", "label": 1}, "{bad"])
    before = src.read_bytes()
    cases = [
        (
            ["validate", src, "--task", "score", "--skip-invalid", "--rejects", src],
            f"--rejects {src} is the same file as INPUT {src}",
        ),
        (["validate", src, "--task", "score", "-o", src], f"--output {src} is the same file as INPUT {src}"),
        (["convert", src, src, "--to", "messages"], f"OUTPUT {src} is the same file as INPUT {src}"),
        (
            [
                "validate",
                src,
                "--task",
                "score",
                "-o",
                tmp_path / "o.jsonl",
                "--skip-invalid",
                "--rejects",
                tmp_path / "o.jsonl",
            ],
            f"--rejects {tmp_path / 'o.jsonl'} is the same file as --output {tmp_path / 'o.jsonl'}",
        ),
    ]
    for args, message in cases:
        r = mg_data(*args)
        assert (r.returncode, r.stderr) == (2, f"error: {message}; nothing was written\n"), args
        assert unchanged(src, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]


def test_a_symlink_or_hard_link_to_the_input_is_the_input(tmp_path):
    src = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "q", "response": "a"}])
    before = src.read_bytes()
    link, hard = tmp_path / "link.jsonl", tmp_path / "hard.jsonl"
    link.symlink_to(src)
    os.link(src, hard)
    for out in (link, hard):
        r = mg_data("convert", src, out, "--to", "messages")
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert f"OUTPUT {out} is the same file as INPUT {src}" in r.stderr
        assert unchanged(src, before)


def test_a_symlinked_output_is_written_through(tmp_path, samples):
    src = write_jsonl(tmp_path / "in.jsonl", samples["alpaca"])
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(real)
    assert mg_data("convert", src, link, "--to", "messages").returncode == 0
    assert link.is_symlink() and len(read_jsonl(real)) == 3


def test_non_finite_labels_are_row_errors_with_file_and_line(tmp_path):
    lines = [
        '{"text_1": "a", "text_2": "b", "label": 0.5}',
        '{"text_1": "a", "text_2": "b", "label": NaN}',
        '{"text_1": "a", "text_2": "b", "score": Infinity}',
        '{"text_1": "a", "text_2": "b", "label": -Infinity}',
    ]
    src = write_jsonl(tmp_path / "s.jsonl", lines)
    before = src.read_bytes()
    r = mg_data("validate", src, "--task", "score")
    assert r.returncode == 1
    assert r.stderr.splitlines()[:3] == [
        f"{src}:2: NaN is not a number JSON allows: non-finite values are not valid data (use a finite number)",
        f"{src}:3: Infinity is not a number JSON allows: non-finite values are not valid data (use a finite number)",
        f"{src}:4: -Infinity is not a number JSON allows: non-finite values are not valid data (use a finite number)",
    ]
    assert "1 valid, 3 invalid" in r.stderr
    assert unchanged(src, before)
    cls = tmp_path / "c.json"
    cls.write_text('[{"text": "a", "label": 1}, {"text": "b", "label": NaN}]')
    r = mg_data("validate", cls, "--task", "classify", "-o", tmp_path / "o.jsonl", "--skip-invalid")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"{cls}:1: NaN is not a number JSON allows")
    assert read_jsonl(tmp_path / "o.jsonl") == [{"text": "a", "label": 1}]
    assert read_jsonl(tmp_path / "o.jsonl.rejects.jsonl")[0]["raw"] == '{"text": "b", "label": NaN}'


def write_parquet(path, table) -> bytes:
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    return path.read_bytes()


def test_non_finite_numbers_from_parquet_are_row_errors(tmp_path):
    import pyarrow as pa

    src = tmp_path / "s.parquet"
    table = pa.table(
        {"text_1": ["a", "b", "c"], "text_2": ["x", "y", "z"], "label": [0.5, float("nan"), float("inf")]}
    )
    before = write_parquet(src, table)
    r = mg_data("validate", src, "--task", "score", "-o", tmp_path / "o.jsonl", "--skip-invalid")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[:2] == [
        f"{src}:2: label must be a finite number, got nan",
        f"{src}:3: label must be a finite number, got inf",
    ]
    assert read_jsonl(tmp_path / "o.jsonl") == [{"text_1": "a", "text_2": "x", "label": 0.5}]
    rejects = read_jsonl(tmp_path / "o.jsonl.rejects.jsonl")  # valid JSON: the NaN row kept as text
    assert rejects[0]["raw"] == '{"text_1": "b", "text_2": "y", "label": NaN}'
    assert unchanged(src, before)
    # A NaN outside the task's fields is not written as invalid JSON either.
    other = tmp_path / "c.parquet"
    write_parquet(other, pa.table({"prompt": ["q"], "response": ["a"], "weight": [float("nan")]}))
    r = mg_data("convert", other, tmp_path / "m.jsonl", "--to", "alpaca")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == (
        f"{other}:1: the row holds NaN or an infinite number, which JSON cannot hold (use a finite number)"
    )
    assert not (tmp_path / "m.jsonl").exists()


def test_a_parquet_timestamp_column_is_one_line(tmp_path):
    import datetime

    import pyarrow as pa

    src = tmp_path / "t.parquet"
    before = write_parquet(
        src, pa.table({"prompt": ["q"], "response": ["a"], "created": [datetime.datetime(2025, 1, 2, 3, 4)]})
    )
    r = mg_data("convert", src, tmp_path / "o.jsonl", "--to", "messages")
    assert (r.returncode, r.stderr) == (
        2,
        f"error: {src}: column 'created' is timestamp[us], which has no JSON form; "
        "cast it to string (or drop it) before reading\n",
    )
    assert unchanged(src, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_a_truncated_or_corrupt_parquet_file_is_one_line(tmp_path):
    import pyarrow as pa

    whole = write_parquet(
        tmp_path / "whole.parquet", pa.table({"prompt": ["q"] * 100, "response": ["a"] * 100})
    )
    for name, data in [("cut.parquet", whole[: len(whole) // 2]), ("junk.parquet", b"not parquet at all\n")]:
        src = tmp_path / name
        src.write_bytes(data)
        r = mg_data("convert", src, tmp_path / "o.jsonl", "--to", "messages")
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith(f"error: {src}: not a readable Parquet file (")
        assert unchanged(src, data)
        assert not (tmp_path / "o.jsonl").exists()


NO_PYARROW = "import sys, runpy; sys.modules['pyarrow'] = None; sys.argv[0] = 'mg-data'; runpy.run_module('mg_data', run_name='__main__')"


def test_parquet_without_pyarrow_is_one_line(tmp_path, samples):
    """pyarrow made unimportable for real, in the process that runs the command."""
    src = write_jsonl(tmp_path / "in.jsonl", samples["alpaca"])
    before = src.read_bytes()
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_PYARROW,
            "convert",
            str(src),
            str(tmp_path / "o.parquet"),
            "--to",
            "messages",
        ],
        capture_output=True,
        text=True,
    )
    assert (r.returncode, r.stderr) == (
        2,
        f"error: {tmp_path / 'o.parquet'}: Parquet needs pyarrow: pip install 'mg-data[parquet]'\n",
    )
    assert unchanged(src, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    (tmp_path / "x.parquet").write_bytes(b"")
    r = subprocess.run(
        [sys.executable, "-c", NO_PYARROW, "validate", str(tmp_path / "x.parquet"), "--task", "sft"],
        capture_output=True,
        text=True,
    )
    assert (r.returncode, r.stderr) == (
        2,
        f"error: {tmp_path / 'x.parquet'}: Parquet needs pyarrow: pip install 'mg-data[parquet]'\n",
    )
