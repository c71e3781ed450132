"""Everything before LLaMA-Factory starts (mg_lf_bridge.run.stage): the native YAML's fixes, the data checked by
mg-data (file:line) or written as an LLaMA-Factory folder, the run folder rules. No LLaMA-Factory needed."""

from __future__ import annotations

import json

import pytest
import yaml

from mg_data import InvalidRows
from mg_lf_bridge import BridgeError
from mg_lf_bridge.run import stage
from mg_testing.datasets import write_jsonl

SHAREGPT = [
    {"conversations": [{"from": "human", "value": "Say hello."}, {"from": "gpt", "value": "Hello there!"}]},
    {"conversations": [{"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "Blue."}]},
]


@pytest.fixture
def lf_folder(tmp_path, monkeypatch):
    """The current directory holds data/dataset_info.json, as in LLaMA-Factory's own checkout."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "chat.jsonl", SHAREGPT)
    (tmp_path / "data" / "dataset_info.json").write_text(
        json.dumps({"chat": {"file_name": "chat.jsonl", "formatting": "sharegpt"}}), encoding="utf-8"
    )
    return tmp_path


def native(model_dir, **keys) -> dict:
    return {
        "model_name_or_path": str(model_dir),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "dataset": "chat",
        "template": "qwen3_nothink",
        "output_dir": "out",
        **keys,
    }


def written(staged) -> dict:
    return yaml.safe_load(staged.config_file.read_text(encoding="utf-8"))


@pytest.mark.parametrize("value", ["None", "null", "", None, False])
def test_a_resume_from_checkpoint_meaning_no_is_dropped(lf_folder, tiny_decoder_dir, value):
    """LLaMA-Factory reads the string "None" as a folder: FileNotFoundError ... 'None/trainer_state.json'."""
    notes: list[str] = []
    staged = stage(native(tiny_decoder_dir, resume_from_checkpoint=value), source="lf.yaml", log=notes.append)
    args = written(staged)
    assert "resume_from_checkpoint" not in args
    if isinstance(value, str):
        assert any(f"resume_from_checkpoint: {value!r} means start fresh: dropped" in n for n in notes)


def test_a_native_yaml_is_passed_on_with_the_run_folder_ours(lf_folder, tiny_decoder_dir):
    staged = stage(
        native(tiny_decoder_dir, lora_rank=4, plot_loss=True), source="lf.yaml", log=lambda _: None
    )
    args = written(staged)
    # LLaMA-Factory writes into the run folder's llamafactory/; the run log and export go beside it
    assert args["output_dir"] == str(lf_folder / "out" / "llamafactory")
    assert staged.config_file == lf_folder / "out" / "llamafactory" / "train.yaml"
    expected = native(tiny_decoder_dir, lora_rank=4, plot_loss=True)
    assert {k: v for k, v in args.items() if k != "output_dir"} == {
        k: v for k, v in expected.items() if k != "output_dir"
    }


def test_a_bad_row_is_reported_with_file_and_line_before_launch(lf_folder, tiny_decoder_dir):
    bad = [*SHAREGPT, {"conversations": [{"from": "gpt", "value": "an answer to nothing"}]}]
    write_jsonl(lf_folder / "data" / "chat.jsonl", bad)
    with pytest.raises(InvalidRows) as e:
        stage(native(tiny_decoder_dir), source="lf.yaml", log=lambda _: None)
    assert "chat.jsonl:3" in str(e.value)


def test_no_rows_at_all_is_said_before_llamafactory_says_cannot_find_valid_samples(
    lf_folder, tiny_decoder_dir
):
    (lf_folder / "data" / "chat.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(BridgeError, match="no rows .*Cannot find valid samples"):
        stage(native(tiny_decoder_dir), source="lf.yaml", log=lambda _: None)


def test_an_mg_train_config_gets_its_data_as_an_llamafactory_folder(tmp_path, tiny_decoder_dir):
    first = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "hi", "response": "hello"}])
    second = write_jsonl(tmp_path / "b.jsonl", [{"instruction": "count", "input": "", "output": "one two"}])
    held_out = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "bye", "response": "goodbye"}])
    config = {
        "task": "sft",
        "model_name_or_path": str(tiny_decoder_dir),
        "train_file": [str(first), str(second)],
        "eval_file": str(held_out),
        "output_dir": str(tmp_path / "run"),
    }
    args = written(stage(config, source="mg.yaml", log=lambda _: None))
    folder = tmp_path / "run" / "llamafactory" / "data"
    assert (args["dataset"], args["eval_dataset"], args["dataset_dir"]) == (
        "train_1,train_2",
        "eval",
        str(folder),
    )
    info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"train_1", "train_2", "eval"}
    rows = [json.loads(line) for line in (folder / info["train_2"]["file_name"]).read_text().splitlines()]
    assert rows[0]["conversations"][-1]["value"] == "one two"


def test_a_previous_run_is_continued_or_replaced_never_mixed(lf_folder, tiny_decoder_dir):
    staged = stage(native(tiny_decoder_dir), source="lf.yaml", log=lambda _: None)
    checkpoint = staged.lf_dir / "checkpoint-3"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}", encoding="utf-8")
    (staged.lf_dir / "checkpoint-4").mkdir()  # cut short by a kill: no trainer_state.json
    with pytest.raises(BridgeError, match="holds a previous run .*continue it with --resume"):
        stage(native(tiny_decoder_dir), source="lf.yaml", log=lambda _: None)
    resumed = written(stage(native(tiny_decoder_dir, resume_from_checkpoint="auto"), log=lambda _: None))
    assert resumed["resume_from_checkpoint"] == str(checkpoint)
    stage(native(tiny_decoder_dir, overwrite_output_dir=True), log=lambda _: None)
    assert not checkpoint.exists()


def test_only_locked_releases_run(lf_folder, tiny_decoder_dir):
    with pytest.raises(BridgeError, match="--lf-version 0.9.1: not one of 0.9.2, 0.9.3, 0.9.4, 0.9.5"):
        stage(native(tiny_decoder_dir), version="0.9.1", log=lambda _: None)
