"""clean_stale_temps: what a killed process left is removed; what a live one is writing is not."""

from __future__ import annotations

import os
import time

from fs_helpers import dead_pid, temps

from mg_fs import clean_stale_temps, is_temp_name, temp_name


def make(directory, name: str, *, age: float = 0.0, folder: bool = False):
    path = directory / name
    if folder:
        path.mkdir()
        (path / "inside.bin").write_bytes(b"x")
    else:
        path.write_bytes(b"x")
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


def test_temps_of_a_gone_process_are_removed_files_and_folders(tmp_path):
    pid = dead_pid()
    make(tmp_path, f".out.jsonl.{pid}.0123abcd.mg-tmp")
    make(tmp_path, f".model.{pid}.89abcdef.mg-tmp", folder=True)
    removed = clean_stale_temps(tmp_path)
    assert len(removed) == 2
    assert temps(tmp_path) == []


def test_temps_of_a_live_writer_are_kept(tmp_path):
    live = make(tmp_path, temp_name("out.jsonl"))  # this process, writing now
    assert clean_stale_temps(tmp_path) == []
    assert live.exists()


def test_a_reused_pid_does_not_protect_an_older_temp(tmp_path):
    """The pid is alive (this very process) but it started after the temp file was last written: the
    file belongs to an earlier process that had the same pid."""
    old = make(tmp_path, f".out.jsonl.{os.getpid()}.0123abcd.mg-tmp", age=3600 * 24 * 365)
    clean_stale_temps(tmp_path)
    assert not old.exists()


def test_names_that_are_not_ours_are_left_alone(tmp_path):
    pid = dead_pid()
    others = [
        ".out.jsonl.tmp",
        f".out.{pid}.tmp",
        f"out.{pid}.0123abcd.mg-tmp",
        f".x.{pid}.zz.mg-tmp",
        "data",
    ]
    for name in others:
        make(tmp_path, name)
    clean_stale_temps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    assert not any(is_temp_name(n) for n in others)


def test_a_folder_renamed_away_by_a_dead_swap_is_put_back_when_its_place_is_empty(tmp_path):
    """Killed between renaming the old folder away and renaming the new one in: the old one returns."""
    pid = dead_pid()
    old = make(tmp_path, f".model.{pid}.0123abcd.mg-old", folder=True)
    clean_stale_temps(tmp_path)
    assert not old.exists()
    assert (tmp_path / "model" / "inside.bin").read_bytes() == b"x"


def test_a_folder_renamed_away_is_removed_once_the_new_one_is_in_place(tmp_path):
    pid = dead_pid()
    (tmp_path / "model").mkdir()
    old = make(tmp_path, f".model.{pid}.0123abcd.mg-old", folder=True)
    clean_stale_temps(tmp_path)
    assert not old.exists()
    assert list((tmp_path / "model").iterdir()) == []


def test_a_missing_folder_is_not_an_error(tmp_path):
    assert clean_stale_temps(tmp_path / "nope") == []


def test_long_names_fit_the_file_name_limit(tmp_path):
    name = "a" * 250
    (tmp_path / name).write_bytes(b"old")
    from mg_fs import write_bytes_atomic

    write_bytes_atomic(tmp_path / name, b"new")
    assert (tmp_path / name).read_bytes() == b"new"
