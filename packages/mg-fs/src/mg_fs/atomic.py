"""Atomic writes of files and folders: a reader sees the old content or the new, never half of one.

Every failure path removes the temp entry: an exception in the caller's block, KeyboardInterrupt, SystemExit
(see `exit_on_sigterm`), and an error of the commit itself (ENOSPC from flush, fsync or close). A process
killed with SIGKILL cannot clean up; the next write in the same folder removes its temp entry
(`clean_stale_temps`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mg_fs.stale import OLD, clean_stale_temps, temp_name

PathLike = str | os.PathLike


def _real_target(path: PathLike) -> Path:
    """The file a write to `path` should replace: through a symlink, the file it points at (so the link
    stays a link); the temp file then lives beside that file, on its file system."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _kept_mode(target: Path) -> int | None:
    """Permission bits of the file or folder being replaced; None for a new one (umask applies)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return None


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the folder's entry is on disk; some file systems refuse, which is fine.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_new(path: str, flags: int) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)


class AtomicFile:
    """A temp file beside `path`, open for writing as `file`; `commit()` renames it over `path`,
    `abort()` removes it. Either may be called once; abort after commit does nothing."""

    def __init__(self, path: PathLike, mode: str = "wb", *, encoding: str | None = None):
        if not mode.startswith(("w", "x")) or "+" in mode:
            raise ValueError(f"atomic writes open for writing only ('w', 'wb'), not {mode!r}")
        self.path = Path(path)
        self.target = _real_target(self.path)
        directory = self.target.parent
        clean_stale_temps(directory)
        self.temp_path = directory / temp_name(self.target.name)
        kept = _kept_mode(self.target)
        if "b" not in mode:
            encoding = encoding or "utf-8"
        # O_EXCL: never open someone else's file; 0o666 & ~umask for new files, as open() would make them.
        self.file: IO[Any] = open(  # noqa: SIM115 (closed by commit or abort)
            self.temp_path, mode.replace("x", "w"), encoding=encoding, opener=_create_new
        )
        try:
            if kept is not None:
                os.fchmod(self.file.fileno(), kept)
        except BaseException:
            self.file.close()
            self.temp_path.unlink(missing_ok=True)
            raise
        self.done = False

    def commit(self) -> None:
        """Flush, fsync, close and rename into place. On any error the temp file is removed first."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.temp_path, self.target)
        except BaseException:
            self.abort()
            raise
        self.done = True
        _fsync_dir(self.target.parent)

    def abort(self) -> None:
        """Close (ignoring errors: a full disk fails the close too) and remove the temp file."""
        if self.done:
            return
        self.done = True
        try:
            with contextlib.suppress(Exception):
                self.file.close()
        finally:
            self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


@contextmanager
def atomic_write(path: PathLike, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Yield a file open on `.{name}.{pid}.{random}.mg-tmp` beside `path`; on success flush, fsync and
    rename it over `path`; on any exception remove it. Text modes default to UTF-8."""
    atomic = AtomicFile(path, mode, encoding=encoding)
    try:
        yield atomic.file
    except BaseException:
        atomic.abort()
        raise
    atomic.commit()


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: PathLike, text: str, *, encoding: str = "utf-8") -> None:
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)


def write_json_atomic(
    path: PathLike, obj: Any, indent: int | None = 2, *, default: Callable[[Any], Any] | None = None
) -> None:
    """Write `obj` as JSON (UTF-8, not ASCII-escaped, newline-terminated). NaN and infinities are not JSON:
    they raise ValueError naming the path, before anything is written."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent, default=default)
    except ValueError as e:
        raise ValueError(f"{path}: cannot write as JSON: {e}") from None
    except TypeError as e:
        raise TypeError(f"{path}: cannot write as JSON: {e}") from None
    write_text_atomic(path, text + "\n")


@contextmanager
def atomic_dir(path: PathLike) -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; on success it replaces `path` (an existing folder is renamed
    away first and removed only once the new one is in place), on any exception it is removed."""
    target = _real_target(path)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder")
    directory = target.parent
    clean_stale_temps(directory)
    temp = directory / temp_name(target.name)
    os.mkdir(temp)
    try:
        kept = _kept_mode(target)
        if kept is not None:
            os.chmod(temp, kept)
        yield temp
        _swap_in(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _fsync_dir(directory)


def _swap_in(new: Path, target: Path) -> None:
    if not target.exists():
        os.rename(new, target)
        return
    # Killed between the two renames, the old folder is put back by the next clean_stale_temps.
    old = target.parent / temp_name(target.name, OLD)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
