"""The real `mg-serve` command in a subprocess: one-line errors, and a server that starts, answers and stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from conftest import free_port


def mg_serve(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mg_serve", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and text in lines[0], lines[0]


def test_no_such_folder(tmp_path):
    assert_one_line_error(mg_serve(tmp_path / "nope"), "nope: no such folder")


def test_not_a_model_folder(tmp_path):
    assert_one_line_error(mg_serve(tmp_path), "not a model folder (no config.json)")


def test_unknown_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["SomethingElse"]}))
    assert_one_line_error(mg_serve(tmp_path), "architectures ['SomethingElse']")


def test_port_in_use(embed_export):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_error(mg_serve(embed_export, "--port", port), f"--port {port}: cannot listen")


def test_bad_flag_value(embed_export):
    proc = mg_serve(embed_export, "--engine", "tensorrt")
    assert proc.returncode == 2 and "tensorrt" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # ~20 s on 2 cores: a fresh interpreter imports torch and loads MiniLM
def test_serves_answers_and_stops_on_sigterm(embed_export):
    port = free_port()
    env = {**os.environ, "MG_SERVE_API_KEY": "k"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mg_serve",
            str(embed_export),
            "--port",
            str(port),
            "--served-model-name",
            "e",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mg-serve did not come up"
            time.sleep(0.3)
        assert httpx.post(f"{base}/v1/embeddings", json={"input": "a"}).status_code == 401  # env key
        ok = httpx.post(
            f"{base}/v1/embeddings", json={"model": "e", "input": "a"}, headers={"Authorization": "Bearer k"}
        )
        assert len(ok.json()["data"][0]["embedding"]) == 384
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    # uvicorn shuts down (the engine closed by the app's lifespan), then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err and "Traceback" not in err
