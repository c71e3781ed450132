"""Read pip's index settings the way `pip install` does, so that uv can be given the same ones.

People behind mirrors configure pip (pip.conf or PIP_* variables); uv reads neither. Files load in pip's
order, a later file overriding an earlier one key by key: global (each $XDG_CONFIG_DIRS/pip/pip.conf,
then /etc/pip.conf), user (~/.pip/pip.conf, then ~/.config/pip/pip.conf; skipped when $PIP_CONFIG_FILE
names an existing file), site (<virtualenv>/pip.conf), then $PIP_CONFIG_FILE. Within the merged files
[install] overrides [global]; PIP_* variables override everything. PIP_CONFIG_FILE=/dev/null loads no file.
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_KEYS = ("index-url", "extra-index-url", "find-links", "no-index")


@dataclass(frozen=True)
class PipSettings:
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    # key -> where its value came from: a file path or an environment variable's name.
    origins: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.index_url or self.extra_index_urls or self.find_links or self.no_index)


def config_files(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The files pip reads, lowest precedence first."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    if not (env_file and Path(env_file).exists()):
        home = Path(environ.get("HOME") or Path.home())
        config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
        files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    # pip's site file is beside the interpreter pip runs in: the user's active virtualenv.
    files.append(Path(environ.get("VIRTUAL_ENV") or sys.prefix) / "pip.conf")
    if env_file:
        files.append(Path(env_file))
    return files


def _split(value: str) -> tuple[str, ...]:
    return tuple(value.split())


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def read(environ: Mapping[str, str] = os.environ) -> PipSettings:
    merged: dict[tuple[str, str], tuple[str, str]] = {}  # (section, key) -> (value, origin)
    for path in config_files(environ):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error:
            continue  # pip refuses such a file loudly; the user sees that when they run pip
        for section in ("global", "install"):
            if parser.has_section(section):
                for key, value in parser.items(section):
                    key = key.replace("_", "-")
                    if key in _KEYS:
                        merged[section, key] = (value, str(path))
    values: dict[str, tuple[str, str]] = {}
    for section in ("global", "install"):
        values.update({key: v for (sec, key), v in merged.items() if sec == section})
    for key in _KEYS:
        var = "PIP_" + key.upper().replace("-", "_")
        if var in environ:
            values[key] = (environ[var], var)

    def rel(link: str) -> str:
        # A relative folder means the same to pip from the cwd; uv runs elsewhere, so make it absolute.
        return str(Path(link).resolve()) if "://" not in link and Path(link).exists() else link

    index = values.get("index-url", ("", ""))[0].strip() or None
    return PipSettings(
        index_url=index,
        extra_index_urls=_split(values.get("extra-index-url", ("", ""))[0]),
        find_links=tuple(rel(x) for x in _split(values.get("find-links", ("", ""))[0])),
        no_index=_truthy(values.get("no-index", ("", ""))[0]),
        origins={key: origin for key, (_, origin) in values.items()},
    )
