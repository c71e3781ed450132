"""The committed locks can be made again: lockgen gives the same file (PyPI as of the lock date)."""

from __future__ import annotations

import sys

import pytest

from mg_env import lockgen, profiles


@pytest.mark.parametrize("name", ["llamafactory", "vllm"])
def test_lockgen_regenerates_the_committed_lock(name, tmp_path):
    prof = profiles.PROFILES[name]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    new = lockgen.compile_lock(prof, prof.default_version, python, out_dir=tmp_path)
    assert new.read_text() == (prof.lock_dir / new.name).read_text()


def test_check_mode_reports_same(capsys):
    assert lockgen.main(["llamafactory", "--version", "0.9.5", "--python", "3.11", "--check"]) == 0
    assert "same    llamafactory-0.9.5-linux-x86_64-py311.txt" in capsys.readouterr().out
