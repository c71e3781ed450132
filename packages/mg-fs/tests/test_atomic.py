"""atomic_write / atomic_dir on real files: kills, full disks, permissions, symlinks."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess

import pytest
from fs_helpers import start_child, temps

from mg_fs import (
    AtomicFile,
    atomic_dir,
    atomic_write,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_replaces_the_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new")
        assert target.read_bytes() == b"old"  # nothing visible before the commit
        assert len(temps(tmp_path)) == 1
    assert target.read_bytes() == b"new"
    assert temps(tmp_path) == []


def test_temp_name_marks_it_as_ours_and_carries_the_pid(tmp_path):
    with atomic_write(tmp_path / "out.jsonl") as f:
        (name,) = temps(tmp_path)
        assert name.startswith(f".out.jsonl.{os.getpid()}.") and name.endswith(".mg-tmp")
        assert os.path.basename(f.name) == name


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(3)])
def test_any_exception_in_the_block_removes_the_temp_and_keeps_the_old_file(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(type(error)), atomic_write(target, "w") as f:
        f.write("half")
        raise error
    assert target.read_text() == "old"
    assert temps(tmp_path) == []


class CloseFails:
    """The fault: close() raises (as it does on a full disk when the last buffer is flushed)."""

    def __init__(self, file):
        self.file = file

    def __getattr__(self, name):
        return getattr(self.file, name)

    def close(self):
        self.file.close()
        raise OSError(errno.EIO, "close failed")


def test_an_error_in_close_during_commit_still_removes_the_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    atomic = AtomicFile(target)
    atomic.file.write(b"new")
    atomic.file = CloseFails(atomic.file)
    with pytest.raises(OSError, match="close failed"):
        atomic.commit()
    assert target.read_bytes() == b"old"
    assert temps(tmp_path) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (real ENOSPC). Where mount is not allowed, None: the tests inject ENOSPC instead."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
        ).returncode
        == 0
    )
    yield mount if mounted else None
    if mounted:
        subprocess.run(["umount", str(mount)], check=True)


def fill(directory) -> None:
    """Fill the file system of `directory` to the last byte."""
    with open(directory / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
        try:
            while True:
                f.write(b"\0")
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_disk_full_while_writing_leaves_no_temp_and_the_old_file(tmp_path, tiny_disk, monkeypatch):
    directory = tiny_disk or tmp_path
    target = directory / "out.json"
    target.write_bytes(b'{"old": 1}\n')
    if tiny_disk is None:  # no mount here: inject the error a full disk gives
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError) as caught, atomic_write(target) as f:
        f.write(b"x" * 200_000)  # larger than the disk: write() itself fails
        f.flush()
        os.fsync(f.fileno())
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b'{"old": 1}\n'
    assert temps(directory) == []


def test_disk_full_inside_commit_leaves_no_temp_and_the_old_file(tmp_path, tiny_disk, monkeypatch):
    """A small write stays in the buffer; the disk-full error comes from the flush/close of the commit,
    which used to skip the unlink and keep the disk full."""
    directory = tiny_disk or tmp_path
    target = directory / "out.json"
    target.write_bytes(b'{"old": 1}\n')
    if tiny_disk is None:
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    else:
        fill(directory)
    with pytest.raises(OSError) as caught:
        write_bytes_atomic(target, b'{"new": 2}\n')
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == b'{"old": 1}\n'
    assert temps(directory) == []


def test_kill_9_mid_write_leaves_a_temp_that_the_next_write_removes(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    child = start_child(
        f"""
        import time
        from mg_fs import atomic_write
        with atomic_write({str(target)!r}) as f:
            f.write(b"half")
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    child.kill()
    child.wait()
    assert len(temps(tmp_path)) == 1  # SIGKILL cannot be cleaned up after...
    write_bytes_atomic(target, b"new")
    assert temps(tmp_path) == []  # ...but the next write in the folder does it
    assert target.read_bytes() == b"new"


def test_sigterm_mid_write_leaves_no_temp_and_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    child = start_child(
        f"""
        import time
        from mg_fs import atomic_write, exit_on_sigterm
        exit_on_sigterm()
        with atomic_write({str(target)!r}) as f:
            f.write(b"half")
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 143
    assert temps(tmp_path) == []
    assert target.read_bytes() == b"old"


@pytest.mark.parametrize("mode", [0o644, 0o755, 0o600, 0o640])
def test_a_replaced_file_keeps_its_permission_bits(tmp_path, mode):
    target = tmp_path / "out.sh"
    target.write_bytes(b"old")
    target.chmod(mode)
    write_bytes_atomic(target, b"new")
    assert mode_of(target) == mode


def test_a_new_file_gets_the_usual_mode_under_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        write_bytes_atomic(tmp_path / "new.bin", b"x")
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "new.bin") == 0o666 & ~0o027


def test_a_symlinked_target_is_written_through(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "data.json"
    real.write_text("old")
    real.chmod(0o644)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert mode_of(real) == 0o644
    assert temps(tmp_path) == [] and temps(real_dir) == []


def test_a_dangling_symlink_creates_the_file_it_points_at(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "later.txt")
    write_text_atomic(link, "hello")
    assert link.is_symlink() and (tmp_path / "later.txt").read_text() == "hello"


def test_write_json_is_utf8_and_refuses_nan_naming_the_path(tmp_path):
    target = tmp_path / "s.json"
    write_json_atomic(target, {"text": "好闷啊"})
    assert target.read_text(encoding="utf-8") == '{\n  "text": "好闷啊"\n}\n'
    with pytest.raises(ValueError, match=rf"^{target}: cannot write as JSON: Out of range float"):
        write_json_atomic(target, {"loss": float("nan")})
    assert json.loads(target.read_text(encoding="utf-8")) == {"text": "好闷啊"}
    assert temps(tmp_path) == []


def test_read_modes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="for writing only"), atomic_write(tmp_path / "x", "ab"):
        pass


def test_atomic_dir_swaps_a_whole_folder_in(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    target.chmod(0o755)
    with atomic_dir(target) as tmp:
        (tmp / "new.bin").write_bytes(b"new")
        assert (target / "old.bin").exists()  # the old folder serves readers until the swap
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert mode_of(target) == 0o755
    assert temps(tmp_path) == []


def test_atomic_dir_failure_removes_the_temp_folder_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_bytes(b"half")
        raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["old.bin"]
    assert temps(tmp_path) == []


def test_atomic_dir_creates_a_new_folder_and_refuses_a_file(tmp_path):
    with atomic_dir(tmp_path / "fresh") as tmp:
        (tmp / "a").write_text("a")
    assert (tmp_path / "fresh" / "a").read_text() == "a"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is not a folder"), atomic_dir(tmp_path / "file"):
        pass


def test_kill_9_of_a_folder_build_is_cleaned_by_the_next_one(tmp_path):
    target = tmp_path / "model"
    child = start_child(
        f"""
        import time
        from mg_fs import atomic_dir
        with atomic_dir({str(target)!r}) as tmp:
            (tmp / "half.bin").write_bytes(b"half")
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    child.kill()
    child.wait()
    assert len(temps(tmp_path)) == 1
    with atomic_dir(target) as tmp:
        (tmp / "whole.bin").write_bytes(b"whole")
    assert temps(tmp_path) == []
    assert [p.name for p in target.iterdir()] == ["whole.bin"]
