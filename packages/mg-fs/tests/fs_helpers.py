"""Helpers of the mg-fs tests (not conftest.py: every member has one, and `from conftest import` picks
whichever tests folder came first when several members run in one pytest)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def temps(directory: Path) -> list[str]:
    """Our temp entries in a folder."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith((".mg-tmp", ".mg-old")))


def start_child(code: str) -> subprocess.Popen:
    """A real Python process running `code`; returns once it printed its first line ("ready")."""
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline()
    assert line.strip() == "ready", (line, child.stderr.read() if child.poll() is not None else "")
    return child


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
