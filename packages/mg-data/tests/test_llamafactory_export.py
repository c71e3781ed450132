"""Writing LLaMA-Factory dataset folders (write_dataset, `mg-data export-lf`), read back through our reader."""

import fcntl
import json
import os
import subprocess
import sys
import time

import lf_data
import pytest
from conftest import mg_data, write_jsonl
from lf_data import EXPECTED, make_dataset_dir

import mg_data as api
from mg_data.errors import DataError
from mg_data.llamafactory import dataset_ref, write_dataset
from mg_data.pipeline import InvalidRows


@pytest.fixture
def info(tmp_path):
    return make_dataset_dir(tmp_path / "data")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_layout_round_trips_through_an_exported_folder(info, tmp_path, name):
    task, expected = EXPECTED[name]
    out = tmp_path / "lf"
    written = write_dataset(dataset_ref(info.parent, name), out, name, task)
    assert written == out / f"{name}.jsonl"
    assert list(api.iter_examples(dataset_ref(out, name), task)) == expected


def test_the_entry_declares_what_the_file_holds(info, tmp_path):
    out = tmp_path / "lf"
    for name, task in [("dpo", "dpo"), ("kto", "kto"), ("pt", "pt"), ("glaive", "sft")]:
        write_dataset(dataset_ref(info.parent, name), out, name, task)
    entries = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    messages = {"messages": "conversations"}  # system and tools only where a row holds them
    assert entries == {
        "dpo": {
            "file_name": "dpo.jsonl",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {**messages, "chosen": "chosen", "rejected": "rejected"},
        },
        "kto": {
            "file_name": "kto.jsonl",
            "formatting": "sharegpt",
            "columns": {**messages, "kto_tag": "kto_tag"},
        },
        "pt": {"file_name": "pt.jsonl", "columns": {"prompt": "text"}},
        "glaive": {
            "file_name": "glaive.jsonl",
            "formatting": "sharegpt",
            "columns": {**messages, "tools": "tools"},
        },
    }
    write_dataset(dataset_ref(info.parent, "sharegpt"), out, "chat", "sft")  # one row of two has a system
    chat = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))["chat"]
    assert chat["columns"] == {**messages, "system": "system"}
    rows = [json.loads(line) for line in (out / "dpo.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == lf_data.DPO  # dpo_en_demo's own layout
    kto = [json.loads(line) for line in (out / "kto.jsonl").read_text(encoding="utf-8").splitlines()]
    assert kto[1] == {
        "conversations": [{"from": "human", "value": "What is 3*3?"}, {"from": "gpt", "value": "6"}],
        "kto_tag": False,
    }


def test_exporting_merges_into_an_existing_dataset_info(info, tmp_path):
    out = tmp_path / "lf"
    out.mkdir()
    (out / "dataset_info.json").write_text(
        json.dumps({"theirs": {"file_name": "theirs.json"}, "sft": {"file_name": "old.json"}}),
        encoding="utf-8",
    )
    write_dataset(dataset_ref(info.parent, "sharegpt"), out, "sft", "sft")
    write_dataset([{"text": "一段文字"}], out, "more", "pt")
    entries = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert list(entries) == ["theirs", "sft", "more"]  # kept, replaced in place, added
    assert entries["theirs"] == {"file_name": "theirs.json"} and entries["sft"]["file_name"] == "sft.jsonl"
    assert list(api.iter_examples(dataset_ref(out, "more"), "pt")) == [{"text": "一段文字"}]
    assert sorted(p.name for p in out.iterdir()) == ["dataset_info.json", "more.jsonl", "sft.jsonl"]


def test_bad_rows_write_nothing(info, tmp_path):
    out = tmp_path / "lf"
    write_dataset(dataset_ref(info.parent, "pt"), out, "pt", "pt")
    before = (out / "dataset_info.json").read_text(encoding="utf-8")
    src = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "q", "response": "a"}, {"prompt": "q"}])
    with pytest.raises(InvalidRows) as e:
        write_dataset(src, out, "sft", "sft")
    assert str(e.value).splitlines()[0] == f"{src}:2: missing field 'response' (or 'output')"
    assert (out / "dataset_info.json").read_text(encoding="utf-8") == before
    assert not (out / "sft.jsonl").exists()
    with pytest.raises(InvalidRows) as e:
        write_dataset([{"text": "ok"}, {"text": ""}], tmp_path / "new", "texts", "pt")
    assert str(e.value).splitlines()[0] == "<rows>:2: text is empty"
    assert not (tmp_path / "new").exists()


def test_what_llamafactory_cannot_hold_is_refused_by_row(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "c", "rejected": "r"},
        {"chosen": "c", "rejected": "r"},  # TRL allows a pair without a prompt
        {
            "prompt": [{"role": "user", "content": "q"}],
            "chosen": [
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "more"},
                {"role": "assistant", "content": "b"},
            ],
            "rejected": [{"role": "assistant", "content": "x"}],
        },
    ]
    with pytest.raises(InvalidRows) as e:
        write_dataset(rows, tmp_path / "lf", "pairs", "dpo")
    assert str(e.value).splitlines()[:2] == [
        "<rows>:2: LLaMA-Factory needs a prompt: every preference pair answers a user turn",
        "<rows>:3: chosen holds 3 messages; LLaMA-Factory holds one assistant message per answer",
    ]


def test_names_tasks_and_conflicts_are_one_line(info, tmp_path):
    out = tmp_path / "lf"
    ref = dataset_ref(info.parent, "alpaca_sft")
    cases = [
        (
            ("a/b", "sft"),
            "dataset name 'a/b': the name becomes NAME.jsonl and is listed in `dataset: a,b`, so it may not hold '/', '\\\\', '#' or ',' nor start with '.'",
        ),
        (
            ("x", "classify"),
            "LLaMA-Factory has no classify stage; a dataset can be written for pt, sft, rm, dpo, kto",
        ),
    ]
    for (name, task), message in cases:
        with pytest.raises(DataError) as e:
            write_dataset(ref, out, name, task)
        assert str(e.value) == message
    out.mkdir()
    (out / "dataset_info.json").write_text(
        json.dumps({"mine": {"file_name": "ours.jsonl"}}), encoding="utf-8"
    )
    with pytest.raises(DataError) as e:
        write_dataset(ref, out, "ours", "sft")
    assert str(e.value) == (
        f"{out / 'dataset_info.json'}: dataset 'mine' reads ours.jsonl, which dataset 'ours' would replace; "
        "choose another name"
    )


def test_export_lf_command(info, tmp_path):
    out = tmp_path / "lf"
    src = write_jsonl(tmp_path / "chat.jsonl", [EXPECTED["sharegpt"][1][1]])
    r = mg_data("export-lf", src, out, "--task", "sft")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"wrote {out / 'chat.jsonl'} and dataset 'chat' in {out / 'dataset_info.json'}",
        f"use it with: dataset: chat and dataset_dir: {out}",
    ]
    r = mg_data("export-lf", f"{info}#dpo", out, "--task", "rm")
    assert r.returncode == 0, r.stderr
    assert list(api.iter_examples(dataset_ref(out, "dpo"), "rm")) == EXPECTED["dpo"][1]
    r = mg_data("export-lf", f"{info}#dpo", out, "--task", "sft", "--name", "x")
    assert (r.returncode, r.stderr) == (
        2,
        f"error: {info}:{lf_data.entry_line(info, 'dpo')}: dataset 'dpo': ranking is true: a pairwise dataset "
        "is read by rm or dpo, not sft\n",
    )
    r = mg_data("export-lf", out / "chat.jsonl", out, "--task", "sft")
    assert r.returncode == 2
    assert (
        r.stderr
        == f"error: the data file {out / 'chat.jsonl'} is the same file as input 1 {out / 'chat.jsonl'}; nothing was written\n"
    )


def test_an_export_waits_for_another_one_into_the_same_folder(tmp_path):
    out = tmp_path / "lf"
    write_dataset([{"text": "first"}], out, "first", "pt")
    src = write_jsonl(tmp_path / "second.jsonl", [{"text": "second"}])
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a first export holds it while it merges its entry
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mg_data", "export-lf", src, out, "--task", "pt"])
        time.sleep(3)
        assert proc.poll() is None  # waiting, not merging into a dataset_info.json that is about to change
    finally:
        os.close(fd)
    assert proc.wait(timeout=60) == 0
    assert list(json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))) == ["first", "second"]
