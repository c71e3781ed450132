"""Which running processes use an env: read from /proc, so that a build in use is never deleted under them.

A process uses a folder when its executable, working directory, a mapped file (a loaded .so), an open file,
an absolute path among its arguments (a venv's `bin/python` is a symlink to the base interpreter, so its
exe is outside the env and only argv[0] shows it; an entry-point script's shebang puts the build's python
there too) or its VIRTUAL_ENV (set by `mg-env run`, Env.run and Env.popen) is inside it.
Processes of other users are visible to root only; elsewhere /proc hides them and they are not counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class User:
    pid: int
    command: str  # /proc/PID/comm: the program's short name

    def __str__(self) -> str:
        return f"{self.pid} ({self.command})"


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f + os.sep) for f in folders)


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # the process ended, or is another user's
        return None


def _links(pid_dir: Path) -> Iterable[str]:
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:
        fds = []
    for link in (pid_dir / "exe", pid_dir / "cwd", *fds):
        if (target := _readlink(link)) is not None:
            yield target


def _mapped(pid_dir: Path) -> Iterable[str]:
    try:
        lines = (pid_dir / "maps").read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            yield fields[5].removesuffix(" (deleted)")


def _arguments_and_venv(pid_dir: Path) -> Iterable[str]:
    try:
        argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    for arg in argv:
        if arg.startswith(b"/"):
            yield os.path.normpath(os.fsdecode(arg))
    try:
        environ = (pid_dir / "environ").read_bytes().split(b"\0")
    except OSError:
        environ = []
    for var in environ:
        if var.startswith(b"VIRTUAL_ENV=/"):
            yield os.path.normpath(os.fsdecode(var[len(b"VIRTUAL_ENV=") :]))


def users(folders: Iterable[Path]) -> list[User]:
    """Processes (other than this one) using any of `folders`, by PID."""
    # The kernel shows resolved paths (exe, maps, fds); argv and VIRTUAL_ENV keep what the caller wrote,
    # which may go through the envs/<name> link: compare both spellings.
    spellings = set()
    for folder in folders:
        spellings.add(os.path.normpath(os.path.abspath(folder)))
        spellings.add(os.path.realpath(folder))
    wanted = tuple(sorted(spellings))
    found = []
    for pid_dir in PROC.iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        paths = [*_links(pid_dir), *_mapped(pid_dir), *_arguments_and_venv(pid_dir)]
        if any(_inside(p, wanted) for p in paths):
            try:
                command = (pid_dir / "comm").read_text().strip()
            except OSError:
                continue  # it ended meanwhile
            found.append(User(int(pid_dir.name), command))
    return sorted(found, key=lambda u: u.pid)
