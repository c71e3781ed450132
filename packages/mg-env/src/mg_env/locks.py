"""Committed lock files: one per profile, version and platform, named `<profile>-<version>-<platform>.txt`.

A lock is `uv pip compile --generate-hashes` output (made by `python -m mg_env.lockgen`). Its sha256 is
recorded in every env built from it, so a lock that changed since (a new mg-env release) shows as drift.
"""

from __future__ import annotations

import hashlib
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from mg_env.errors import EnvError
from mg_env.profiles import Profile

_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
# What `uv pip compile --generate-hashes` writes: `name==version \` (maybe ` ; marker`), then hash lines.
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(\s*;[^\\]*)?\s*\\?$")
_HASH = re.compile(r"^\s+--hash=sha256:([0-9a-f]{64})\s*\\?$")
# The command lockgen writes into the header (--custom-compile-command): which profile and version.
_MADE_BY = re.compile(r"^#\s+python -m mg_env\.lockgen (\S+) --version (\S+) --python (\S+)")


def platform_tag(python: str | None = None) -> str:
    """`linux-x86_64-py311`: the OS and machine this process runs on and a Python version (X.Y)."""
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"{sys.platform}-{platform.machine().lower()}-py{python.replace('.', '')}"


def lock_file(profile: Profile, version: str, python: str) -> Path:
    return profile.lock_dir / f"{profile.name}-{version}-{platform_tag(python)}.txt"


def locked_pythons(profile: Profile, version: str) -> list[str]:
    """Python versions (X.Y) that have a lock for this machine's OS and architecture, newest first."""
    stem = f"{profile.name}-{version}-{platform_tag('0.0').rsplit('-', 1)[0]}-py"
    found = []
    for path in profile.lock_dir.glob(f"{stem}*.txt"):
        digits = path.name[len(stem) : -len(".txt")]
        if digits.isdigit():
            found.append(f"{digits[0]}.{digits[1:]}")
    return sorted(found, key=lambda v: tuple(int(x) for x in v.split(".")), reverse=True)


def require_lock(profile: Profile, version: str, python: str) -> Path:
    path = lock_file(profile, version, python)
    if path.is_file():
        return path
    others = sorted(p.name for p in profile.lock_dir.glob(f"{profile.name}-{version}-*.txt"))
    raise EnvError(
        f"no lock for {profile.name} {version} on {platform_tag(python)} "
        f"(locks: {', '.join(others) or 'none'}); make one with "
        f"`python -m mg_env.lockgen {profile.name} --version {version} --python {python}`"
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Lock:
    """A lock file as read by `read`: what its header says it was made for, and every pin with its hashes."""

    path: Path
    profile: str
    version: str
    python: str
    pins: dict[str, tuple[str, tuple[str, ...]]]  # name -> (version, sha256 hashes)


def read(path: Path) -> Lock:
    """Parse a lock strictly: every requirement pinned `==` with at least one sha256 hash, and a header that
    names the profile and version (lockgen's command). EnvError `<file>:<line>: what` otherwise."""
    made_for = None
    pins: dict[str, tuple[str, tuple[str, ...]]] = {}
    current: tuple[str, str, list[str], int] | None = None

    def close() -> None:
        if current is not None:
            name, version, hashes, at = current
            if not hashes:
                raise EnvError(f"{path}:{at}: {name}=={version} has no --hash=sha256: line")
            pins[name] = (version, tuple(hashes))

    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            if made_for is None and (m := _MADE_BY.match(line)):
                made_for = m.groups()
            continue
        if line[0].isspace():
            if current is None or not (m := _HASH.match(line)):
                raise EnvError(
                    f"{path}:{number}: expected `--hash=sha256:<64 hex digits>`, got {line.strip()!r}"
                )
            current[2].append(m.group(1))
            continue
        close()
        if not (m := _REQUIREMENT.match(line)):
            raise EnvError(f"{path}:{number}: not pinned as name==version: {line.strip()!r}")
        current = (m.group(1).lower(), m.group(2), [], number)
    close()
    if made_for is None:
        raise EnvError(f"{path}:1: no `python -m mg_env.lockgen PROFILE --version V --python X.Y` header")
    if not pins:
        raise EnvError(f"{path}: pins nothing")
    return Lock(path, *made_for, pins=pins)


def pinned(path: Path) -> dict[str, str]:
    """name -> version of every requirement the lock pins."""
    pins = {}
    for line in path.read_text().splitlines():
        if m := _PINNED.match(line):
            pins[m.group(1).lower()] = m.group(2)
    return pins
