"""pip's index settings read as pip reads them: file order, [install] over [global], PIP_* over files."""

from __future__ import annotations

import os

from mg_env import pipconfig


def _env(tmp_path, **extra):
    # A HOME and XDG dirs of the test's own, so the machine's real pip config files stay out of it.
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        "VIRTUAL_ENV": str(tmp_path / "venv"),
        **extra,
    }


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_user_file_overrides_global_file_key_by_key(tmp_path):
    _write(tmp_path / "xdg/pip/pip.conf", "[global]\nindex-url = https://global/simple\nfind-links = /g\n")
    user = _write(tmp_path / "home/.config/pip/pip.conf", "[global]\nindex-url = https://user/simple\n")
    got = pipconfig.read(_env(tmp_path))
    assert got.index_url == "https://user/simple"
    assert got.find_links == ("/g",)
    assert got.origins["index-url"] == str(user)


def test_install_section_beats_global_and_variables_beat_files(tmp_path):
    _write(
        tmp_path / "home/.pip/pip.conf",
        "[global]\nextra-index-url = https://a/simple\n[install]\nextra-index-url =\n  https://b/simple\n  https://c/simple\n",
    )
    got = pipconfig.read(_env(tmp_path))
    assert got.extra_index_urls == ("https://b/simple", "https://c/simple")
    got = pipconfig.read(_env(tmp_path, PIP_EXTRA_INDEX_URL="https://d/simple https://e/simple"))
    assert got.extra_index_urls == ("https://d/simple", "https://e/simple")
    assert got.origins["extra-index-url"] == "PIP_EXTRA_INDEX_URL"


def test_pip_config_file_skips_user_files_and_devnull_skips_all(tmp_path):
    _write(tmp_path / "home/.config/pip/pip.conf", "[global]\nindex-url = https://user/simple\n")
    _write(tmp_path / "xdg/pip/pip.conf", "[global]\nno-index = true\n")
    own = _write(tmp_path / "own.conf", "[global]\nfind-links = https://own/links\n")
    got = pipconfig.read(_env(tmp_path, PIP_CONFIG_FILE=str(own)))
    assert got.index_url is None and got.no_index and got.find_links == ("https://own/links",)
    assert not pipconfig.read(_env(tmp_path, PIP_CONFIG_FILE=os.devnull))


def test_virtualenv_file_and_relative_find_links(tmp_path, monkeypatch):
    (tmp_path / "wheels").mkdir()
    _write(tmp_path / "venv/pip.conf", "[global]\nfind-links = wheels\n")
    monkeypatch.chdir(tmp_path)
    # pip reads a relative folder from the cwd; uv runs elsewhere, so it is made absolute.
    assert pipconfig.read(_env(tmp_path)).find_links == (str(tmp_path / "wheels"),)


def test_nothing_configured_is_falsy(tmp_path):
    assert not pipconfig.read(_env(tmp_path))
