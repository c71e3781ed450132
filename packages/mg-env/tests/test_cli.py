"""`mg-env` as a person meets it: user errors are one line and a non-zero exit; doctor's JSON shape."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def mg_env(*args, home, **env):
    return subprocess.run(
        [sys.executable, "-m", "mg_env", *args],
        env={**os.environ, "MG_ENV_HOME": str(home), **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["build", "vlm"],
            "error: unknown profile 'vlm': did you mean 'vllm'? profiles are llamafactory, vllm, vllm-cpu",
        ),
        (
            ["build", "llamafactory", "--version", "0.9.9"],
            "error: llamafactory has no version '0.9.9': choose one of 0.9.2, 0.9.3, 0.9.4, 0.9.5 (default 0.9.5)",
        ),
        (
            ["run", "llamafactory", "--", "llamafactory-cli", "version"],
            "error: llamafactory 0.9.5 is not built; build it with: mg-env build llamafactory",
        ),
        (
            ["run", "llamafactory", "--version", "0.9.3", "--", "true"],
            "error: llamafactory 0.9.3 is not built; build it with: mg-env build llamafactory --version 0.9.3",
        ),
        (["remove", "vllm-cpu"], "error: nothing to remove: no vllm-cpu env is built"),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, message):
    done = mg_env(*args, home=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == message
    assert done.stdout == ""


def test_doctor_json_shape(shared_home):
    done = mg_env("doctor", "--json", home=shared_home)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= {"python", "torch", "gpus", "libraries", "index", "uv", "disk", "envs", "problems"}
    assert report["python"]["version"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert "installed" in report["torch"]
    assert set(report["libraries"]) == {"flash-attn", "liger-kernel", "deepspeed", "bitsandbytes"}
    assert all(set(lib) >= {"installed", "importable"} for lib in report["libraries"].values())
    assert report["index"]["origin"] in {"uv", "pip", "default"} and report["index"]["index_url"]
    assert report["disk"]["free_gib"] > 0
    assert isinstance(report["gpus"], list) and isinstance(report["problems"], list)
    for env in report["envs"]:
        assert set(env) >= {"name", "profile", "version", "python", "path", "lock_status", "packages"}
        assert env["lock_status"] in {"ok", "drift", "no-lock"}


def test_doctor_table_names_every_section(shared_home):
    done = mg_env("doctor", home=shared_home)
    assert done.returncode == 0, done.stderr
    firsts = [line.split()[0] for line in done.stdout.splitlines() if line and not line.startswith(" ")]
    for section in (
        "python",
        "torch",
        "gpu",
        "flash-attn",
        "liger-kernel",
        "deepspeed",
        "bitsandbytes",
        "index",
        "uv",
        "disk",
        "envs",
    ):
        assert section in firsts


def test_doctor_shows_pip_index_mapped(tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\n")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    done = subprocess.run(
        [sys.executable, "-m", "mg_env", "doctor", "--json"],
        env={**clean, "MG_ENV_HOME": str(tmp_path), "PIP_CONFIG_FILE": str(conf)},
        capture_output=True,
        text=True,
    )
    index = json.loads(done.stdout)["index"]
    assert index["origin"] == "pip" and index["index_url"] == "https://mirror.example/simple"
    assert index["from"] == [str(conf)]


def test_list_shows_every_profile_version(tmp_path):
    done = mg_env("list", "--json", home=tmp_path)
    rows = json.loads(done.stdout)
    assert [(r["profile"], r["version"], r["state"]) for r in rows] == [
        ("llamafactory", "0.9.2", "-"),
        ("llamafactory", "0.9.3", "-"),
        ("llamafactory", "0.9.4", "-"),
        ("llamafactory", "0.9.5", "-"),
        ("vllm", "0.33.0", "-"),
        ("vllm-cpu", "0.32.0", "-"),
    ]


def test_importing_mg_env_loads_no_torch():
    code = "import sys, mg_env, mg_env.cli, mg_env.doctor; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["doctor"],
        ["build", "llamafactory"],
        ["run", "llamafactory", "--", "true"],
        ["remove", "vllm-cpu"],
    ],
)
def test_home_that_is_a_file_is_one_line(tmp_path, args):
    home = tmp_path / "not-a-folder"
    home.write_text("")
    done = mg_env(*args, home=home)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: MG_ENV_HOME={home} is a file, not a folder: point MG_ENV_HOME at a folder "
        "(default ~/.local/share/mg-env)"
    )


@pytest.mark.parametrize("args", [["build", "llamafactory"], ["remove", "vllm-cpu"]])
def test_home_this_user_cannot_write_is_one_line(args):
    # Root writes anywhere: as root the command runs as `nobody` (setpriv), so the folder really is unwritable.
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    parent = Path(tempfile.mkdtemp())  # not pytest's tmp_path: its parents are private to the user running it
    try:
        parent.chmod(0o755)
        home = parent / "home"
        home.mkdir(mode=0o555)
        done = subprocess.run(
            [*as_user, sys.executable, "-m", "mg_env", *args],
            env={**os.environ, "MG_ENV_HOME": str(home)},
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(parent)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: cannot write to MG_ENV_HOME={home} (Permission denied: {home}/")
    assert done.stderr.strip().endswith("point MG_ENV_HOME at a folder you can write")
