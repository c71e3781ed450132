"""The folder mg-env keeps its envs in, and the three operations that make builds safe.

Layout of $MG_ENV_HOME (default ~/.local/share/mg-env):
    envs/<name>                  symlink to the current build of env <name> (e.g. llamafactory-0.9.5)
    envs/.builds/<name>.<stamp>  one folder per build; a venv is created at its final path and never moved
    envs/.mutex/<name>.lock      flock held while an env is built or removed (mg_fs.file_lock)
    logs/<name>.<stamp>.log      uv's output of each build
    tools/uv/                    uv, when mg-env had to install it

Why a symlink and not a rename: venvs are not relocatable (entry-point scripts carry the absolute path
of their python), so a build cannot be made elsewhere and moved into place. It is made at its final
path instead, and `envs/<name>` is switched to it with one rename of a new symlink over the old one,
which is atomic: a killed build leaves the old link, and the old env, as they were.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from mg_env import procs
from mg_env.errors import EnvError, InUse
from mg_fs import LockHeld, file_lock

HOME_ENV = "MG_ENV_HOME"
RECORD = "mg-env.json"  # written last into a build: a build folder without it never finished
KEEP_LOGS = 5


def default_home() -> Path:
    if explicit := os.environ.get(HOME_ENV):
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "mg-env"


def _home_named(home: Path) -> str:
    """How the user chose this home, for messages: the variable when it came from there."""
    if os.environ.get(HOME_ENV) and Path(os.environ[HOME_ENV]).expanduser() == home:
        return f"{HOME_ENV}={home}"
    return f"mg-env's home {home}"


class Store:
    def __init__(self, home: Path | str | None = None):
        self.home = Path(home).expanduser() if home else default_home()
        try:
            is_file = self.home.exists() and not self.home.is_dir()
        except OSError:  # a parent this user cannot search: the first write says so (see lock)
            is_file = False
        if is_file:
            raise EnvError(
                f"{_home_named(self.home)} is a file, not a folder: point {HOME_ENV} at a folder "
                "(default ~/.local/share/mg-env)"
            )
        self.envs = self.home / "envs"
        self.builds = self.envs / ".builds"
        self.logs = self.home / "logs"
        self.tools = self.home / "tools"

    def link(self, name: str) -> Path:
        return self.envs / name

    def current(self, name: str) -> Path | None:
        """The finished build `envs/<name>` points at, or None."""
        link = self.link(name)
        if not link.is_symlink():
            return None
        target = link.resolve()
        return target if (target / RECORD).is_file() else None

    def names(self) -> list[str]:
        if not self.envs.is_dir():
            return []
        # Hidden names are a switch's temporary link, left if it was killed between its two steps.
        links = (p for p in self.envs.iterdir() if p.is_symlink() and not p.name.startswith("."))
        return sorted(p.name for p in links if self.current(p.name))

    @contextmanager
    def lock(self, name: str, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
        """An exclusive flock for `name`; the kernel drops it when the holder dies, even by SIGKILL. The first
        write into the home: a home this user cannot write is a one-line EnvError here."""
        path = self.envs / ".mutex" / f"{name}.lock"
        with ExitStack() as held:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    held.enter_context(file_lock(path, blocking=False))
                except LockHeld:
                    on_wait()
                    held.enter_context(file_lock(path))
            except OSError as e:
                raise EnvError(
                    f"cannot write to {_home_named(self.home)} ({e.strerror}: {e.filename}); point {HOME_ENV} "
                    "at a folder you can write"
                ) from None
            yield

    def new_build(self, name: str) -> Path:
        self.builds.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{name}.{time.strftime('%Y%m%d-%H%M%S')}-", dir=self.builds))
        path.chmod(0o755)  # mkdtemp makes it private; envs built by root are run by other users (Docker)
        return path

    def build_dirs(self, name: str) -> list[Path]:
        if not self.builds.is_dir():
            return []
        return sorted(p for p in self.builds.iterdir() if p.name.startswith(f"{name}.") and p.is_dir())

    def clean_unfinished(self, name: str) -> list[Path]:
        """Remove builds that never finished (killed midway). Call only while holding lock(name)."""
        gone = [p for p in self.build_dirs(name) if not (p / RECORD).is_file()]
        for path in gone:
            shutil.rmtree(path, ignore_errors=True)
        return gone

    def switch(self, name: str, build: Path) -> Path | None:
        """Point envs/<name> at `build` in one atomic rename; return the build it pointed at before."""
        previous = self.current(name)
        tmp = self.envs / f".{name}.link-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(build.relative_to(self.envs))
        os.replace(tmp, self.link(name))
        return previous

    def prune(self, name: str, keep: set[Path]) -> None:
        """Delete this env's other builds, except those a running process uses (see procs.users): they go
        at a later build, once nothing runs from them. The one just replaced is kept in any case: a server
        starting from it may not have opened its files yet."""
        keep_real = {k.resolve() for k in keep}
        for path in self.build_dirs(name):
            if path.resolve() not in keep_real and not procs.users([path]):
                shutil.rmtree(path, ignore_errors=True)
        logs = sorted(self.logs.glob(f"{name}.*.log")) if self.logs.is_dir() else []
        for old in logs[:-KEEP_LOGS]:
            old.unlink(missing_ok=True)

    def users(self, name: str) -> list[procs.User]:
        """Running processes that use any build of env `name`."""
        return procs.users([self.link(name), *self.build_dirs(name)])

    def remove(self, name: str) -> bool:
        """Unlink envs/<name> (one atomic step: the env is gone), then delete its builds. Refused (InUse,
        naming the PIDs) while a process runs from any of them; nothing is removed then."""
        if in_use := self.users(name):
            raise InUse(name, in_use)
        link = self.link(name)
        existed = link.is_symlink() or bool(self.build_dirs(name))
        if link.is_symlink():
            link.unlink()
        for path in self.build_dirs(name):
            shutil.rmtree(path, ignore_errors=True)
        return existed
