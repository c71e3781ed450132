"""One exclusive file lock: flock(2), so the kernel drops it when the holding process dies."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager


class LockHeld(OSError):
    """`file_lock(path, blocking=False)` found the lock held by another process (or another open of it)."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(errno.EWOULDBLOCK, "locked by another process", os.fspath(path))
        self.path = os.fspath(path)

    def __str__(self) -> str:
        return f"{self.path}: locked by another process"


@contextmanager
def file_lock(path: str | os.PathLike, *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing) for the block. With `blocking=False`, raise
    LockHeld at once instead of waiting."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockHeld(path) from None
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock
