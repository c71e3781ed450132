import json
import subprocess
import sys


def test_mg_data_subcommand_converts(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"prompt": "你好", "response": "您好！"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    out = tmp_path / "out.jsonl"
    cmd = [
        sys.executable,
        "-c",
        "from mg_cli.main import main; main()",
        "data",
        "convert",
        str(src),
        str(out),
        "--to",
        "sharegpt",
    ]
    subprocess.run(cmd, check=True)
    row = json.loads(out.read_text(encoding="utf-8"))
    assert row["conversations"] == [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "您好！"}]


def test_mg_reports_a_missing_file_in_one_line(tmp_path):
    cmd = [
        sys.executable,
        "-c",
        "from mg_cli.main import main; main()",
        "data",
        "stats",
        str(tmp_path / "nope.jsonl"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.jsonl'}: no such file"


def test_mg_mounts_every_package_command():
    out = subprocess.run(
        [sys.executable, "-c", "from mg_cli.main import main; main()", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("data", "env", "eval", "train"):
        assert f"  {name} " in out
    proc = subprocess.run(
        [sys.executable, "-c", "from mg_cli.main import main; main()", "train"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("usage: mg-train CONFIG.yaml")
