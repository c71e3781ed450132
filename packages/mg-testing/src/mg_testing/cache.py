"""Build a folder once per machine and reuse it: one lock per folder, build in a temp dir, rename into place.

Several pytest processes (xdist workers, suites of different packages run side by side) may ask for the
same folder at once; the lock makes all but one wait, and the rename means a reader never sees half a
folder, even if a builder is killed midway.
"""

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mg_fs import file_lock

CACHE_ENV = "MG_TESTING_CACHE"
# Written last, inside the temp dir: a folder without it was not made by a finished build.
BUILD_MARKER = "mg-testing-build.json"


def cache_root() -> Path:
    """$MG_TESTING_CACHE if set, else $XDG_CACHE_HOME/mg-testing, else ~/.cache/mg-testing."""
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mg-testing"


def is_built(folder: Path) -> bool:
    return (folder / BUILD_MARKER).is_file()


def make_readable(folder: Path) -> None:
    # mkdtemp makes the folder private (0700) and safetensors writes weights 0600; a cache that other
    # users or containers read (a shared $MG_TESTING_CACHE on CI) must not be.
    # Only ADD read (and, for folders, search) bits: executables in a cached venv stay executable, and
    # symlinks are skipped, since chmod follows them (a venv's bin/python links to the system interpreter).
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | (0o555 if path.is_dir() else 0o444))


def cached_build(key: str, build: Callable[[Path], object]) -> Path:
    """Return cache_root()/key, first calling build(empty_dir) to fill it if no finished build is there.

    `key` must change whenever what `build` writes changes (put builder and library versions in it).
    """
    root = cache_root()
    target = root / key
    if is_built(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f"{key}.lock"):  # flock: the kernel drops it if the holder dies
        # Another process may have finished the build while we waited for the lock.
        if is_built(target):
            return target
        # Holding the lock, no one else is building this key: leftovers are from killed builds.
        for leftover in root.glob(f".{key}.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        # A folder without the marker was not renamed here by a finished build (half copied by hand, say).
        if target.exists():
            shutil.rmtree(target)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
        try:
            started = time.time()
            build(scratch)
            marker = {"key": key, "built_at": time.time(), "build_seconds": round(time.time() - started, 2)}
            (scratch / BUILD_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            make_readable(scratch)
            os.replace(scratch, target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return target
