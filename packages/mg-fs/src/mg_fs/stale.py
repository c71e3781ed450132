"""Names of our temp files and folders, and removal of those whose process is gone.

A temp entry is named `.{name}.{pid}.{random}.mg-tmp` (or `.mg-old` for a folder renamed away while a new
one is swapped in). The pid says who may still be writing it: an entry is stale when that process no longer
exists, is a zombie, or is a different process that reused the pid (it started after the entry was last
modified).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil

TEMP, OLD = "mg-tmp", "mg-old"
# Leaves room for the pid, the random part and the suffix within the usual 255-byte name limit.
_MAX_NAME = 200
_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.(?P<kind>mg-tmp|mg-old)$", re.DOTALL)
# /proc/stat's btime drifts by about a second over a machine's uptime; a pid reused within this margin of
# the last write to a temp file is taken as still in use (the file is then cleaned on a later run).
_CLOCK_SLACK = 2.0


def temp_name(name: str, kind: str = TEMP) -> str:
    """A fresh temp entry name for the file or folder `name`, carrying this process's pid."""
    return f".{name[:_MAX_NAME]}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"


def is_temp_name(name: str) -> bool:
    return _PATTERN.match(name) is not None


def clean_stale_temps(directory: str | os.PathLike) -> list[str]:
    """Remove our temp files and folders in `directory` whose creating process is gone; return their paths.

    A folder renamed away during a swap (`.mg-old`) is put back if its target is missing (the swapping
    process died between the two renames), else removed. Never raises for a race with another cleaner.
    """
    directory = os.fspath(directory)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in names:
        match = _PATTERN.match(entry)
        if match is None:
            continue
        path = os.path.join(directory, entry)
        try:
            mtime = os.lstat(path).st_mtime
        except FileNotFoundError:
            continue
        if _in_use(int(match["pid"]), mtime):
            continue
        if match["kind"] == OLD and _kept_or_restored(path, directory, match["name"]):
            continue
        _remove(path)
        removed.append(path)
    return removed


def _kept_or_restored(old: str, directory: str, name: str) -> bool:
    """A folder renamed away by a swap that died: put it back where nothing replaced it (True), leave it
    when its name was truncated and so cannot say where it belongs (True), else it may go (False)."""
    if len(name) >= _MAX_NAME:
        return True
    target = os.path.join(directory, name)
    if os.path.lexists(target):
        return False
    with contextlib.suppress(OSError):
        os.rename(old, target)
    return True


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _in_use(pid: int, mtime: float) -> bool:
    """Whether process `pid` may still be writing an entry last modified at `mtime`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    except OverflowError:
        return False  # not a pid at all
    info = _process_info(pid)
    if info is None:
        return True  # no /proc here: a live pid is taken as the writer
    state, started = info
    if state == "Z":
        return False
    return started <= mtime + _CLOCK_SLACK


def _process_info(pid: int) -> tuple[str, float] | None:
    """(state, start time as a Unix time) of a process, from Linux's /proc; None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return ("Z", 0.0) if os.path.isdir("/proc/self") else None  # exited since os.kill
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0], started


def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0
