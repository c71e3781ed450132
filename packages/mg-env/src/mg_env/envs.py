"""A built environment: where its python is, what it was built from, and running commands in it."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mg_env import locks, profiles, store
from mg_env.errors import EnvError, InUse, NotBuilt
from mg_fs import write_json_atomic

# Variables of the caller's Python that would leak its packages into the env's interpreter.
_LEAKY = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONUSERBASE", "CONDA_PREFIX")


@dataclass(frozen=True)
class BuildRecord:
    """Written into every build as mg-env.json, last: what it was built from, and how."""

    profile: str
    version: str
    python: str  # X.Y.Z of the env's interpreter
    platform: str  # linux-x86_64-py311: the lock's platform tag
    lock: str  # lock file name, relative to the profile's lock folder
    lock_sha256: str
    built_at: float
    build_seconds: float
    uv: str
    sources: dict
    mg_env: str

    @classmethod
    def load(cls, path: Path) -> BuildRecord:
        data = json.loads(path.read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: Path) -> None:
        # Written whole or not at all: its presence is what marks a build as finished.
        write_json_atomic(path, dataclasses.asdict(self))


def activated(venv: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a command runs with in `venv`: its bin first on PATH, as `activate` would do, and
    none of the caller's variables that would pull the caller's packages in."""
    env = dict(os.environ if base is None else base)
    for var in _LEAKY:
        env.pop(var, None)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def env_name(profile: str, version: str) -> str:
    return f"{profile}-{version}"


@dataclass(frozen=True)
class Env:
    name: str
    path: Path  # the build folder itself, not the envs/<name> link (see `python`)
    record: BuildRecord
    profile: profiles.Profile

    @property
    def version(self) -> str:
        return self.record.version

    @property
    def link(self) -> Path:
        """envs/<name>: the stable path, always pointing at the current build."""
        return self.path.parent.parent / self.name

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        # The build folder's python, not the link's: a process started now keeps importing from this build
        # even after a rebuild switches envs/<name> to another one.
        return self.bin / "python"

    def lock_status(self) -> str:
        """ok: built from the committed lock; drift: the lock changed since; no-lock: it is gone."""
        lock = self.profile.lock_dir / self.record.lock
        if not lock.is_file():
            return "no-lock"
        return "ok" if locks.sha256(lock) == self.record.lock_sha256 else "drift"

    def versions(self) -> dict[str, str]:
        """Every installed distribution -> version, read from the dist-info folders (no interpreter run)."""
        found = {}
        for dist in self.path.glob("lib/python*/site-packages/*.dist-info"):
            name, _, version = dist.name[: -len(".dist-info")].partition("-")
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
        return dict(sorted(found.items()))

    def key_versions(self) -> dict[str, str | None]:
        installed = self.versions()
        return {name: installed.get(name) for name in self.profile.key_packages}

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment a command runs with in this env (see `activated`)."""
        return activated(self.path, base)

    def argv(self, cmd: Sequence[str | os.PathLike]) -> list[str]:
        """cmd with a bare program name resolved against the env's bin first."""
        if not cmd:
            raise EnvError("no command given")
        argv = [str(c) for c in cmd]
        if os.sep not in argv[0] and (self.bin / argv[0]).exists():
            argv[0] = str(self.bin / argv[0])
        return argv

    def command(self, entrypoint: str) -> list[str]:
        """A named command of the profile: env.command("serve") for vLLM's OpenAI server."""
        template = self.profile.entrypoints.get(entrypoint)
        if template is None:
            names = ", ".join(self.profile.entrypoints) or "none"
            raise EnvError(f"profile {self.profile.name} has no entrypoint {entrypoint!r} (has: {names})")
        return [part.format(python=self.python, bin=self.bin) for part in template]

    def run(
        self,
        cmd: Sequence[str | os.PathLike],
        *,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        **kw,
    ) -> subprocess.CompletedProcess:
        """subprocess.run in this env; keyword arguments go to subprocess.run."""
        return subprocess.run(self.argv(cmd), env=self.environ(env), check=check, **kw)

    def popen(
        self, cmd: Sequence[str | os.PathLike], *, env: Mapping[str, str] | None = None, **kw
    ) -> subprocess.Popen:
        """subprocess.Popen in this env (for servers: mg-serve starts vLLM this way)."""
        return subprocess.Popen(self.argv(cmd), env=self.environ(env), **kw)


def _profile_of(record: BuildRecord) -> profiles.Profile:
    if record.profile in profiles.PROFILES:
        return profiles.PROFILES[record.profile]
    # Built from a Profile a caller made up (tests do): without it, nothing to compare the lock with.
    return profiles.Profile(
        name=record.profile,
        summary="(a profile mg-env does not ship)",
        requirement="",
        versions=(record.version,),
        default_version=record.version,
        lock_dir=Path(os.devnull),
    )


def load(name: str, home: Path | str | None = None, profile: profiles.Profile | None = None) -> Env | None:
    build = store.Store(home).current(name)
    if build is None:
        return None
    record = BuildRecord.load(build / store.RECORD)
    return Env(name=name, path=build, record=record, profile=profile or _profile_of(record))


def get(
    profile: str | profiles.Profile, version: str | None = None, *, home: Path | str | None = None
) -> Env:
    """The built env of a profile; NotBuilt (naming the build command) when there is none."""
    prof, version = profiles.choose(profile, version)
    env = load(env_name(prof.name, version), home, prof)
    if env is not None:
        return env
    others = [e.version for e in list_envs(home) if e.record.profile == prof.name]
    hint = f" (built: {', '.join(others)}; pass --version to use one)" if others else ""
    flag = "" if version == prof.default_version else f" --version {version}"
    raise NotBuilt(f"{prof.name} {version} is not built{hint}; build it with: mg-env build {prof.name}{flag}")


def list_envs(home: Path | str | None = None) -> list[Env]:
    envs = []
    for name in store.Store(home).names():
        try:
            env = load(name, home)
        except (OSError, ValueError, TypeError):
            continue  # a record from some other tool or a future format: not ours to show
        if env is not None:
            envs.append(env)
    return envs


def remove(
    profile: str | profiles.Profile, version: str | None = None, *, home: Path | str | None = None
) -> list[str]:
    """Remove a profile's built envs (every version unless one is given); return the names removed."""
    prof, chosen = profiles.choose(profile, version)
    st = store.Store(home)
    names = [env_name(prof.name, chosen)] if version else [env_name(prof.name, v) for v in prof.versions]
    # Every env asked for is checked before any is removed: all of them go, or none (InUse names the PIDs).
    for name in names:
        if in_use := st.users(name):
            raise InUse(name, in_use)
    removed = []
    for name in names:
        with st.lock(name):  # not while a build of it is running
            if st.remove(name):  # checks again, under the lock
                removed.append(name)
    return removed
