"""file_lock across real processes."""

from __future__ import annotations

import pytest
from fs_helpers import start_child

from mg_fs import LockHeld, file_lock


def test_a_lock_held_by_another_process_raises_lockheld_with_the_path(tmp_path):
    lock = tmp_path / "cache.lock"
    child = start_child(
        f"""
        import time
        from mg_fs import file_lock
        with file_lock({str(lock)!r}):
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    try:
        with pytest.raises(LockHeld) as caught, file_lock(lock, blocking=False):
            pass
        assert isinstance(caught.value, OSError)
        assert caught.value.path == str(lock)
        assert str(caught.value) == f"{lock}: locked by another process"
    finally:
        child.kill()
        child.wait()
    # The kernel drops the lock of a killed holder.
    with file_lock(lock, blocking=False):
        pass


def test_the_lock_is_released_after_the_block_and_the_file_created(tmp_path):
    lock = tmp_path / "sub.lock"
    with file_lock(lock):
        assert lock.exists()
        with pytest.raises(LockHeld), file_lock(lock, blocking=False):  # a second open conflicts too
            pass
    with file_lock(lock, blocking=False):
        pass


def test_a_blocking_lock_waits_for_the_holder(tmp_path):
    lock = tmp_path / "wait.lock"
    child = start_child(
        f"""
        import time
        from mg_fs import file_lock
        with file_lock({str(lock)!r}):
            print("ready", flush=True)
            time.sleep(1)
        print("released", flush=True)
        """
    )
    with file_lock(lock):
        assert child.stdout.readline().strip() == "released"
    child.wait()
