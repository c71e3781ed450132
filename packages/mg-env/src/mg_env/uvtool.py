"""Find uv (PATH first), or install it into mg-env's own folder with pip; run it and stream its output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mg_env import store
from mg_env.errors import EnvError

# Oldest uv with everything mg-env passes it (--python-platform, --exclude-newer, --index-strategy,
# `uv pip sync --require-hashes`, `uv venv --python`).
MIN_VERSION = (0, 5, 0)


def _version(uv: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([str(uv), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    if out.returncode or len(parts) < 2:
        return None
    try:
        return tuple(int(x) for x in parts[1].split(".")[:3])
    except ValueError:
        return None


def version(uv: Path) -> str:
    found = _version(uv)
    return ".".join(map(str, found)) if found else "unknown"


def _usable(uv: Path | None) -> bool:
    return uv is not None and uv.is_file() and (_version(uv) or (0,)) >= MIN_VERSION


def cached_uv(home: Path | None = None) -> Path:
    """Where mg-env keeps the uv it installs itself."""
    return store.Store(home).tools / "uv" / "bin" / "uv"


def find(
    home: Path | None = None, *, install: bool = True, say: Callable[[str], None] = lambda _: None
) -> Path:
    """uv on PATH, else the one in mg-env's folder, else install it there with pip."""
    on_path = shutil.which("uv")
    if on_path and _usable(Path(on_path)):
        return Path(on_path)
    cached = cached_uv(home)
    if _usable(cached):
        return cached
    if not install:
        raise EnvError("uv not found: `pip install uv`, or run `mg-env build` once and mg-env installs it")
    return _install(cached, home, say)


def _pip(tools: Path) -> list[str]:
    """A pip to install uv with: this interpreter's, else one in a venv made for it (a venv made by uv has
    no pip, but the standard library's venv module seeds one from the wheel Python ships)."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pip"]
    venv = tools / "pip-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode:
            raise EnvError(
                f"uv not found and no pip to install it with ({made.stderr.strip()}): `pip install uv`"
            )
    return [str(python), "-m", "pip"]


def _install(target: Path, home: Path | None, say: Callable[[str], None]) -> Path:
    folder = target.parent.parent  # <tools>/uv
    st = store.Store(home)
    with st.lock("uv"):
        if _usable(target):  # another process installed it while we waited
            return target
        say(f"uv not found on PATH: installing it into {folder} with pip")
        st.tools.mkdir(parents=True, exist_ok=True)
        pip = _pip(st.tools)
        # pip uses the user's own index settings here, so a mirror works for this download too.
        scratch = Path(tempfile.mkdtemp(prefix=".uv.", dir=st.tools))
        try:
            done = subprocess.run(
                [*pip, "install", "--quiet", "--disable-pip-version-check", "--target", str(scratch), "uv"],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
                raise EnvError(f"could not install uv with pip: {' '.join(tail)}")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(scratch, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if not _usable(target):
        raise EnvError(f"pip installed uv but {target} does not run")
    return target


def run(
    uv: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    on_line: Callable[[str], None] = lambda _: None,
) -> int:
    """Run `uv ARGS`, writing every output line to `log` and passing it to `on_line`; return the exit code.

    uv runs in `cwd` (mg-env's home) so that no pyproject.toml or .python-version of the user's
    project steers it.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ uv {' '.join(args)}\n")
        proc = subprocess.Popen(
            [str(uv), *args],
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            on_line(line.rstrip("\n"))
        return proc.wait()
