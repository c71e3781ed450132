import json

import pytest

from mg_train.aliases import ALIASES
from mg_train.config import ConfigError, parse

BASE = {"task": "classify", "model_name_or_path": "m", "train_file": "t.jsonl", "output_dir": "out"}


def test_the_issue_example_parses_with_task_defaults(tmp_path):
    job = parse(
        {
            **BASE,
            "eval_file": "e.jsonl",
            "num_train_epochs": 3,
            "per_device_train_batch_size": 16,
            "learning_rate": 5.0e-5,
        }
    )
    assert job.task == "classify" and job.model.model_name_or_path == "m"
    assert job.train.num_train_epochs == 3 and job.train.learning_rate == 5e-5
    assert job.train.eval_strategy == "epoch" and job.train.load_best_model_at_end
    assert job.train.metric_for_best_model == "eval_f1_macro" or job.train.metric_for_best_model == "f1_macro"
    assert not job.train.bf16 and not job.train.gradient_checkpointing


def test_llamafactory_yaml_names(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"prefs": {"file_name": "prefs.jsonl"}}))
    job = parse(
        {
            "stage": "rm",
            "model_name_or_path": "m",
            "dataset": "prefs",
            "dataset_dir": str(tmp_path),
            "cutoff_len": 1024,
            "finetuning_type": "lora",
            "lora_rank": 16,
            "lora_target": "all",
            "template": "qwen",
            "output_dir": "o",
            "overwrite_output_dir": True,
        }
    )
    assert job.task == "rm" and job.data.train_file == str(tmp_path / "prefs.jsonl")
    assert job.model.max_length == 1024 and job.model.lora_r == 16 and job.model.lora_target_modules == "all"


def test_trl_and_sentence_transformers_names():
    job = parse({**BASE, "task": "embed", "max_seq_length": 128, "pooling_mode": "mean", "temperature": 0.02})
    assert job.model.max_length == 128 and job.model.pooling == "mean" and job.train.temperature == 0.02


def test_every_alias_targets_a_real_key():
    job = parse({**BASE, "task": "embed"})
    import dataclasses

    valid = {f.name for obj in (job.model, job.data, job.train) for f in dataclasses.fields(obj)} | {"task"}
    assert {t for t in ALIASES.values() if t} <= valid


def test_unknown_key_suggests_the_nearest(tmp_path):
    with pytest.raises(ConfigError) as e:
        parse({**BASE, "learning_rat": 1e-4}, source="cfg.yaml", locations={"learning_rat": "cfg.yaml:7"})
    assert str(e.value) == "cfg.yaml:7: unknown key 'learning_rat'; did you mean 'learning_rate'?"
    with pytest.raises(ConfigError, match="unknown key 'temperature'"):
        parse({**BASE, "temperature": 0.1})  # an embed key is not a classify key


@pytest.mark.parametrize(
    "change, message",
    [
        ({"task": None}, "missing 'task'"),
        ({"task": "sft"}, "generative"),
        ({"task": "ner"}, "not one of"),
        ({"train_file": None}, "missing 'train_file'"),
        ({"output_dir": None}, "missing 'output_dir'"),
        ({"finetuning_type": "freeze"}, "freeze is not supported"),
    ],
)
def test_config_errors(change, message):
    mapping = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        parse(mapping)


def test_yaml_style_number_strings_become_numbers():
    job = parse(
        {**BASE, "learning_rate": "5e-5", "num_train_epochs": "2", "max_length": "128", "normalize": "false"}
    )
    assert (
        job.train.learning_rate == 5e-5 and job.train.num_train_epochs == 2.0 and job.model.max_length == 128
    )
    with pytest.raises(ConfigError, match="learning_rate must be a number, not 'fast'"):
        parse({**BASE, "learning_rate": "fast"})
