"""The store's promises about builds in use, with real builds (the one-file wheel) and real processes:
`remove` refuses with the PIDs, and a rebuild keeps every build a process still runs from."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import mg_env
from mg_env import locks, store
from mg_env.profiles import Profile

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
RUNNING = "import mg_env_selftest, time; print('ready', flush=True); time.sleep(120)"


def _start(env: mg_env.Env) -> subprocess.Popen:
    proc = env.popen(["python", "-c", RUNNING], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def _as_llamafactory(tmp_path, wheel) -> Profile:
    """The one-file wheel built as `llamafactory 0.9.5`, so that the `mg-env` command can name it."""
    profile = Profile(
        name="llamafactory",
        summary="",
        requirement="mg-env-selftest==1.0",
        versions=("0.9.5",),
        default_version="0.9.5",
        lock_dir=tmp_path / "locks",
    )
    profile.lock_dir.mkdir()
    locks.lock_file(profile, "0.9.5", PYTHON).write_text(
        f"#    python -m mg_env.lockgen llamafactory --version 0.9.5 --python {PYTHON}\n"
        f"mg-env-selftest==1.0 \\\n    --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}\n"
    )
    return profile


def test_remove_refuses_while_a_process_runs_from_the_env(tmp_path, clean_sources, make_wheel):
    wheel = make_wheel(tmp_path / "wheels")
    clean_sources.setenv("UV_FIND_LINKS", str(tmp_path / "wheels"))
    home = tmp_path / "home"
    env = mg_env.build(_as_llamafactory(tmp_path, wheel), home=home)
    remove = [sys.executable, "-m", "mg_env", "remove", "llamafactory"]
    variables = {**os.environ, "MG_ENV_HOME": str(home)}

    server = _start(env)
    try:
        done = subprocess.run(remove, env=variables, capture_output=True, text=True)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"error: llamafactory-0.9.5 is in use by PID {server.pid} (python); stop them, then remove it again"
        )
        assert env.python.exists() and env.link.is_symlink()  # nothing was removed
    finally:
        _stop(server)

    done = subprocess.run(remove, env=variables, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "removed llamafactory-0.9.5\n"), done.stderr
    assert not env.path.exists() and not env.link.is_symlink()


def test_a_rebuild_keeps_every_build_a_process_runs_from(selftest, tmp_path):
    home = tmp_path / "home"
    st = store.Store(home)
    first = mg_env.build(selftest, home=home)
    server = _start(first)
    try:
        second = mg_env.build(selftest, force=True, home=home)
        third = mg_env.build(selftest, force=True, home=home)
        # Without the server, `first` would go now: only the build just replaced (second) is kept.
        assert st.build_dirs("selftest-1.0") == sorted([first.path, second.path, third.path])
        assert _value_of(first) == _value_of(third)
    finally:
        _stop(server)
    fourth = mg_env.build(selftest, force=True, home=home)
    assert st.build_dirs("selftest-1.0") == sorted([third.path, fourth.path])


def _value_of(env: mg_env.Env) -> str:
    code = "import mg_env_selftest; print(mg_env_selftest.VALUE)"
    return env.run(["python", "-c", code], capture_output=True, text=True).stdout.strip()
