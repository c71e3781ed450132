"""`llamafactory-cli train CONFIG.yaml` in its env: output streamed live, Ctrl-C stopping every process of it.

The child runs in a process group of its own (so the terminal's Ctrl-C reaches only us) and we pass signals
on to the whole group: the first SIGINT/SIGTERM as it came, then SIGTERM and SIGKILL if the group is still
there after a grace period; a second signal kills it at once. Its output (stdout and stderr merged, in the
order written) is copied to our stderr as it comes, in chunks so that progress bars keep redrawing, and to a
log file; the end of it is kept to find LLaMA-Factory's own error when it fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# mg-train's launch flags -> the variables LLaMA-Factory's launcher reads (llamafactory/launcher.py)
LAUNCH_ENV = {
    "nproc_per_node": "NPROC_PER_NODE",
    "nnodes": "NNODES",
    "node_rank": "NODE_RANK",
    "master_addr": "MASTER_ADDR",
    "master_port": "MASTER_PORT",
}
GRACE_S = 15.0  # after the first signal: time to stop before SIGTERM, and again before SIGKILL
TAIL_BYTES = 64 * 1024


@dataclass
class Outcome:
    returncode: int
    signal_name: str | None  # the signal that stopped the run (None: it ended by itself)
    tail: str  # the end of its output


def launch_env(launch: Mapping[str, str]) -> dict[str, str]:
    """FORCE_TORCHRUN and torchrun's settings from mg-train's --nproc-per-node/--nnodes/--node-rank/
    --master-addr/--master-port; nothing without them (LLaMA-Factory then uses torchrun on several GPUs)."""
    if not launch:
        return {}
    env = {"FORCE_TORCHRUN": "1"}
    for key, value in launch.items():
        env[LAUNCH_ENV[key]] = str(value)
    return env


def run(
    env,
    config: Path,
    *,
    cwd: str | os.PathLike,
    extra_env: Mapping[str, str],
    log_path: Path,
    out: BinaryIO | None = None,
) -> Outcome:
    """Run `llamafactory-cli train CONFIG` in the mg_env Env `env` until it ends or is stopped by a signal."""
    out = out if out is not None else sys.stderr.buffer
    variables = {**os.environ, **extra_env}
    child = env.popen(
        [*env.command("llamafactory-cli"), "train", str(config)],
        env=variables,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stopper = Stopper(child)
    stopper.install()
    tail = bytearray()
    try:
        with open(log_path, "wb") as log:
            assert child.stdout is not None
            while chunk := child.stdout.read1(65536):
                log.write(chunk)
                if not stopper.received:  # once stopping, its tracebacks of KeyboardInterrupt are not news
                    out.write(chunk)
                    out.flush()
                tail += chunk
                del tail[:-TAIL_BYTES]
        returncode = child.wait()
    finally:
        stopper.restore()
        stopper.kill_group()  # whatever of the group outlived the child (workers of a killed torchrun)
    return Outcome(returncode, stopper.received, tail.decode("utf-8", errors="replace"))


class Stopper:
    """Our SIGINT/SIGTERM handlers while the child runs: they stop its process group."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, child: subprocess.Popen):
        self.child, self.received = child, None
        self._previous: dict[int, object] = {}
        self._escalation: threading.Thread | None = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self.received:
            self._signal(signal.SIGKILL)
            return
        self.received = signal.Signals(signum).name
        self._signal(signum)
        self._escalation = threading.Thread(target=self._escalate, daemon=True)
        self._escalation.start()

    def _escalate(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                self.child.wait(timeout=GRACE_S)
                return
            except subprocess.TimeoutExpired:
                self._signal(sig)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
            os.killpg(self.child.pid, sig)

    def kill_group(self) -> None:
        self._signal(signal.SIGKILL)


# Exceptions that only say that a child failed (torchrun's, LLaMA-Factory's launcher's subprocess.run).
WRAPPERS = (
    "subprocess.CalledProcessError",
    "CalledProcessError",
    "torch.distributed.elastic",
    "ChildFailedError",
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# torchrun puts "[rank0]: " (or "[default0]:" with --tee) before each line a worker prints
RANK_PREFIX = re.compile(r"^\[(?:rank|default)\d+\]:\s?")
EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit|Failure)\b(?::.*)?$"
)


def lf_error(tail: str) -> str | None:
    """The exception line of the last traceback LLaMA-Factory printed that is not a launcher's wrapper
    ("ValueError: Some specified arguments are not used by the HfArgumentParser: ['bad_key']"), else None."""
    lines = [
        RANK_PREFIX.sub("", ANSI.sub("", line)).rstrip() for line in tail.replace("\r", "\n").splitlines()
    ]
    found: list[str] = []
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
            continue
        if in_traceback and line and not line[0].isspace() and not line.startswith(("^", "~")):
            in_traceback = False
            if EXCEPTION_LINE.match(line):
                found.append(line)
    for line in reversed(found):
        if not line.startswith(WRAPPERS) and not any(w in line.split(":")[0] for w in WRAPPERS):
            return line
    return None


def last_lines(tail: str, count: int = 3) -> list[str]:
    """The last non-empty lines of the output (for a child that died without a traceback)."""
    lines = [ANSI.sub("", line).strip() for line in tail.replace("\r", "\n").splitlines()]
    return [line for line in lines if line][-count:]
