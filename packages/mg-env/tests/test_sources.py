"""Which sources uv gets: uv's own settings, else pip's mapped, else PyPI plus the profile's index."""

from __future__ import annotations

import os

from mg_env import sources


def _env(tmp_path, **extra):
    return {
        "HOME": str(tmp_path),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        "PIP_CONFIG_FILE": os.devnull,
        **extra,
    }


def test_pip_settings_become_uv_settings_primary_index_first(tmp_path):
    src = sources.resolve(
        _env(
            tmp_path,
            PIP_INDEX_URL="https://mirror/simple",
            PIP_EXTRA_INDEX_URL="https://x/simple",
            PIP_FIND_LINKS="/w1 /w2",
        ),
        profile_index="https://download.pytorch.org/whl/cpu",
    )
    assert src.origin == "pip"
    # The user's settings replace the profile's index; the primary index is searched first.
    assert src.uv_env() == {
        "UV_DEFAULT_INDEX": "https://mirror/simple",
        "UV_INDEX": "https://mirror/simple https://x/simple",
        "UV_FIND_LINKS": "/w1,/w2",
    }


def test_pip_no_index(tmp_path):
    src = sources.resolve(_env(tmp_path, PIP_NO_INDEX="1", PIP_FIND_LINKS="/w"))
    assert src.uv_env() == {"UV_NO_INDEX": "1", "UV_FIND_LINKS": "/w"}
    assert src.describe()["index_url"] == "(none)"


def test_uv_variables_win_and_are_left_to_uv(tmp_path):
    src = sources.resolve(
        _env(tmp_path, UV_INDEX_URL="https://uvmirror/simple", PIP_INDEX_URL="https://pip/simple")
    )
    assert src.origin == "uv" and src.uv_env() == {}
    assert src.describe()["index_url"] == "https://uvmirror/simple"


def test_uv_toml_counts_as_uv_settings(tmp_path):
    (tmp_path / ".config/uv").mkdir(parents=True)
    (tmp_path / ".config/uv/uv.toml").write_text('index-url = "https://from-toml/simple"\n')
    src = sources.resolve(_env(tmp_path, PIP_INDEX_URL="https://pip/simple"))
    assert src.origin == "uv" and src.where == (str(tmp_path / ".config/uv/uv.toml"),)


def test_nothing_configured_adds_the_profile_index_after_pypi(tmp_path):
    src = sources.resolve(_env(tmp_path), profile_index="https://download.pytorch.org/whl/cpu")
    assert src.origin == "default"
    assert src.uv_env()["UV_INDEX"] == "https://pypi.org/simple https://download.pytorch.org/whl/cpu"


def test_credentials_are_hidden():
    assert sources.redact("https://user:tok@host/simple") == "https://***@host/simple"
    src = sources.Sources(origin="pip", index_url="https://u:p@m/simple")
    assert src.describe()["index_url"] == "https://***@m/simple"
