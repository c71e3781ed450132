import json
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement


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
    for name in ("data", "env", "eval", "serve", "train"):
        assert f"  {name} " in out
    proc = subprocess.run(
        [sys.executable, "-c", "from mg_cli.main import main; main()", "train"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("usage: mg-train CONFIG.yaml")


def test_mg_serve_reports_a_bad_model_folder_in_one_line(tmp_path):
    cmd = [sys.executable, "-c", "from mg_cli.main import main; main()", "serve", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path}: not a model folder (no config.json)"


# Optional backends that a user opts into by configuration; every other extra is what some `mg` command needs.
HEAVY_EXTRAS = {"deepspeed", "vllm", "llamafactory"}


def test_the_umbrella_installs_every_extra_its_commands_need():
    root = Path(__file__).resolve().parents[3]
    project = tomllib.loads((root / "apps/mg-cli/pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {}
    for dep in map(Requirement, project["dependencies"]):
        member = root / "packages" / dep.name / "pyproject.toml"
        if member.is_file():
            extras = tomllib.loads(member.read_text(encoding="utf-8"))["project"].get(
                "optional-dependencies", {}
            )
            wanted[dep.name] = (set(extras) - HEAVY_EXTRAS, dep.extras)
    assert wanted["mg-eval"][0] == {"models", "llamafactory-metrics"}
    assert {name: need - have for name, (need, have) in wanted.items() if need - have} == {}


def test_mg_eval_endpoint_errors_are_one_line(tmp_path):
    data = tmp_path / "e.jsonl"
    data.write_text(json.dumps({"query": "q", "pos": ["p"]}) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-c", "from mg_cli.main import main; main()", "eval", "run", "--task", "embed"]
    proc = subprocess.run(
        [*cmd, "--endpoint", "http://127.0.0.1:9", "--data", str(data)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: http://127.0.0.1:9/v1/models: cannot reach the endpoint")
    assert len(proc.stderr.strip().splitlines()) == 1
