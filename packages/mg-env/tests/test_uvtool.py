"""uv is taken from PATH, or installed with pip into mg-env's own folder when PATH has none."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mg_env import uvtool


def test_uv_on_path_is_used(tmp_path):
    on_path = shutil.which("uv")
    if on_path:
        assert uvtool.find(tmp_path) == uvtool.Path(on_path)


@pytest.mark.network  # pip downloads uv from PyPI
def test_uv_is_installed_into_the_home_when_path_has_none(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no uv, no python: only what mg-env brings
    said = []
    uv = uvtool.find(tmp_path, say=said.append)
    assert uv == tmp_path / "tools" / "uv" / "bin" / "uv"
    assert subprocess.run([str(uv), "--version"], capture_output=True, text=True).stdout.startswith("uv ")
    assert said and "installing it into" in said[0]
    # The second time it is found there, not installed again.
    said.clear()
    assert uvtool.find(tmp_path, say=said.append) == uv and said == []
