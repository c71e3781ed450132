"""refuse_same_files: an output that is an input (or another output) is refused before anything runs."""

from __future__ import annotations

import os

import pytest

from mg_fs import SameFileError, refuse_same_files


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    return path


def test_the_same_path_is_refused_with_one_line(data):
    with pytest.raises(SameFileError) as caught:
        refuse_same_files({"INPUT": data}, {"OUTPUT": None, "--rejects": data})
    assert str(caught.value) == f"--rejects {data} is the same file as INPUT {data}; nothing was written"
    assert isinstance(caught.value, ValueError)


def test_a_relative_spelling_of_the_same_file_is_refused(data, monkeypatch):
    monkeypatch.chdir(data.parent)
    with pytest.raises(SameFileError, match="OUTPUT ./x.jsonl is the same file as INPUT"):
        refuse_same_files({"INPUT": data}, {"OUTPUT": "./x.jsonl"})


def test_a_symlink_to_the_input_is_refused(data, tmp_path):
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    with pytest.raises(SameFileError, match="OUTPUT .*link.jsonl is the same file as INPUT"):
        refuse_same_files({"INPUT": data}, {"OUTPUT": link})


def test_a_hard_link_to_the_input_is_refused(data, tmp_path):
    hard = tmp_path / "hard.jsonl"
    os.link(data, hard)
    with pytest.raises(SameFileError, match="OUTPUT .*hard.jsonl is the same file as INPUT"):
        refuse_same_files({"INPUT": data}, {"OUTPUT": hard})


def test_two_outputs_naming_one_new_file_are_refused(data, tmp_path):
    out = tmp_path / "out.jsonl"  # does not exist yet
    with pytest.raises(SameFileError) as caught:
        refuse_same_files({"INPUT": data}, {"OUTPUT": out, "--rejects": out})
    assert str(caught.value) == f"--rejects {out} is the same file as OUTPUT {out}; nothing was written"


def test_a_symlink_into_a_new_file_is_refused(tmp_path, data):
    link = tmp_path / "pending.jsonl"
    link.symlink_to(tmp_path / "out.jsonl")  # dangling: points at the other output
    with pytest.raises(SameFileError):
        refuse_same_files({"INPUT": data}, {"OUTPUT": tmp_path / "out.jsonl", "--rejects": link})


def test_different_files_pass(data, tmp_path):
    refuse_same_files({"INPUT": data, "--other": None}, {"OUTPUT": tmp_path / "o.jsonl", "--rejects": None})
