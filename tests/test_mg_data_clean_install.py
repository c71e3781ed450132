"""`pip install mg-data` alone, in a clean venv: it must convert data without torch anywhere."""

import json
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.network  # pip installs mg-data's dependencies from PyPI
def test_pip_install_mg_data_alone_converts_without_torch(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    # mg-fs (pure stdlib) is mg-data's one workspace dependency; it comes from the same checkout.
    packages = [str(ROOT / "packages" / name) for name in ("mg-fs", "mg-data")]
    subprocess.run([py, "-m", "pip", "install", "-q", *packages], check=True)
    installed = subprocess.run(
        [py, "-m", "pip", "list", "--format", "json"], check=True, capture_output=True, text=True
    ).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert "mg-data" in names and not names & {"torch", "transformers", "pyarrow"}

    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"prompt": "好闷啊，打开车窗", "response": "好的"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    subprocess.run(
        [env_dir / "bin" / "mg-data", "convert", src, tmp_path / "out.jsonl", "--to", "sharegpt"], check=True
    )
    assert (
        json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))["conversations"][0]["value"]
        == "好闷啊，打开车窗"
    )
    code = (
        "import sys, mg_data; mg_data.convert_row({'prompt': 'q', 'response': 'a'}, to='messages'); "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([py, "-c", code], check=True)
