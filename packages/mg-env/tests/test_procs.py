"""procs.users: real processes found through /proc by what they run from, their working folder and open files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mg_env import procs
from mg_env.uvtool import find


@pytest.fixture
def venv(tmp_path):
    """A real venv (uv, no network): its bin/python is a symlink to the base interpreter, as in every env."""
    path = tmp_path / "env"
    subprocess.run([str(find()), "venv", "--quiet", "--python", sys.executable, str(path)], check=True)
    return path


def _start(argv, **kw):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kw)
    assert proc.stdout.readline().strip() == "ready"  # its files are open and its folder entered
    return proc


def _stop(proc):
    proc.kill()
    proc.wait()


def test_a_process_running_the_envs_python_uses_it(venv, tmp_path):
    proc = _start(
        [str(venv / "bin" / "python"), "-c", "import time; print('ready', flush=True); time.sleep(60)"]
    )
    try:
        assert procs.users([venv]) == [procs.User(proc.pid, "python")]
        assert procs.users([tmp_path / "elsewhere"]) == []
    finally:
        _stop(proc)
    assert procs.users([venv]) == []


def test_an_open_file_or_the_working_folder_inside_counts(venv, tmp_path):
    # The base interpreter (its exe outside the env), with no path of the env among its arguments: only
    # /proc/PID/fd shows the first one, only /proc/PID/cwd the second.
    holder = "import os, time; f = open(os.environ['HELD']); print('ready', flush=True); time.sleep(60)"
    sleeper = "import time; print('ready', flush=True); time.sleep(60)"
    opened = _start([sys.executable, "-c", holder], cwd=tmp_path, env={"HELD": str(venv / "pyvenv.cfg")})
    inside = _start([sys.executable, "-c", sleeper], cwd=venv)
    elsewhere = _start([sys.executable, "-c", sleeper], cwd=tmp_path)
    try:
        assert [u.pid for u in procs.users([venv])] == sorted([opened.pid, inside.pid])
    finally:
        for proc in (opened, inside, elsewhere):
            _stop(proc)
