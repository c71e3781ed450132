import dataclasses
import json

import pytest

from mg_data.tasks import POOLING_TASKS
from mg_train.aliases import ALIASES
from mg_train.config import config_class, parse
from mg_train.errors import ConfigError

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
    # an entry of dataset_info.json, read by mg-data as LLaMA-Factory reads it
    assert job.task == "rm" and job.data.train_file == f"{tmp_path / 'dataset_info.json'}#prefs"
    assert job.model.max_length == 1024 and job.model.lora_r == 16
    # LLaMA-Factory's `all` is peft's all-linear; its LoRA defaults: alpha twice the rank, no dropout
    assert job.model.lora_target_modules == "all-linear"
    assert (job.model.lora_alpha, job.model.lora_dropout) == (32, 0.0)


def test_trl_and_sentence_transformers_names():
    job = parse({**BASE, "task": "embed", "max_seq_length": 128, "pooling_mode": "mean", "temperature": 0.02})
    assert job.model.max_length == 128 and job.model.pooling == "mean" and job.train.temperature == 0.02


def test_every_alias_targets_a_real_key():
    from mg_train.config import DataArgs, ModelArgs
    from mg_train.tasks import TASKS

    # a key of some task: the dpo/kto aliases (pref_beta -> beta, ...) name keys of those tasks' Configs
    classes = [ModelArgs, DataArgs, *(config_class(task) for task in TASKS)]
    valid = {f.name for cls in classes for f in dataclasses.fields(cls) if f.init} | {"task"}
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
        ({"task": "ppo"}, "has no PPO trainer; use task: grpo"),
        ({"task": "ner"}, "not one of"),
        ({"train_file": None}, "missing 'train_file'"),
        ({"output_dir": None}, "missing 'output_dir'"),
        ({"finetuning_type": "freeze"}, "freeze is not supported"),
        ({"max_prompt_length": 128}, "max_prompt_length is gone from TRL 1.x"),
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


def test_an_ignored_llamafactory_key_still_reaches_a_field_of_ours():
    job = parse({**BASE, "trust_remote_code": False, "plot_loss": True})
    assert job.model.trust_remote_code is False and "plot_loss" not in job.raw


@pytest.mark.parametrize(
    "change, message",
    [
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size must be > 0, not 0"),
        ({"per_device_train_batch_size": [8]}, "per_device_train_batch_size must be an integer, not [8]"),
        ({"per_device_eval_batch_size": 2.5}, "per_device_eval_batch_size must be an integer, not 2.5"),
        ({"max_length": -5}, "max_length must be > 0, not -5"),
        ({"cutoff_len": -5}, "max_length must be > 0, not -5"),
        ({"learning_rate": True}, "learning_rate must be a number, not true"),
        ({"learning_rate": [1e-4]}, "learning_rate must be a number, not [0.0001]"),
        ({"num_train_epochs": 0}, "num_train_epochs must be > 0 (or give max_steps), not 0"),
        ({"num_train_epochs": -1}, "num_train_epochs must be > 0 (or give max_steps), not -1"),
        ({"max_steps": 0}, "max_steps must be > 0 (or -1: train num_train_epochs), not 0"),
        ({"max_steps": -3}, "max_steps must be > 0 (or -1: train num_train_epochs), not -3"),
        (
            {"val_size": 1.5},
            "val_size must be a fraction in [0, 1) or a number of rows (an integer >= 1), not 1.5",
        ),
        ({"val_size": -0.1}, "val_size must be a fraction in [0, 1) or a number of rows"),
        ({"lora_dropout": 1.5}, "lora_dropout must be in [0, 1), not 1.5"),
        ({"finetuning_type": "qlora"}, "finetuning_type must be one of full, lora, not 'qlora'"),
        ({"pooling": "max"}, "pooling must be one of cls, mean, last, not 'max'"),
        ({"normalize": "sometimes"}, "normalize must be true or false, not 'sometimes'"),
        ({"eval_strategy": 3}, "eval_strategy must be one of no, steps, epoch, not 3"),
        ({"report_to": 5}, "report_to must be a string or a list of str, not 5"),
        (
            {"problem_type": "ordinal"},
            "problem_type must be one of auto, single_label, multi_label, regression",
        ),
        ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1), not 1.0"),
    ],
)
def test_wrong_values_name_the_key_and_where(change, message):
    where = {k: f"cfg.yaml:{i + 5}" for i, k in enumerate(change)}
    with pytest.raises(ConfigError) as e:
        parse({**BASE, **change}, source="cfg.yaml", locations=where)
    assert str(e.value).startswith(f"{next(iter(where.values()))}: {message}")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "task, change, message",
    [
        ("embed", {"temperature": 0}, "temperature must be > 0, not 0"),
        ("embed", {"num_hard_negatives": -1}, "num_hard_negatives must be >= 0, not -1"),
        ("embed", {"matryoshka_dims": "64"}, "matryoshka_dims must be a list of int or null, not '64'"),
        ("embed", {"matryoshka_dims": [64, 0]}, "matryoshka_dims must be a list of values > 0, not [64, 0]"),
        ("rerank", {"group_size": 1}, "group_size must be >= 2, not 1"),
        ("rerank", {"rerank_loss": "pairwise"}, "rerank_loss must be one of listwise, pointwise"),
        ("score", {"score_loss": "l1"}, "score_loss must be one of cosent, mse, not 'l1'"),
    ],
)
def test_task_fields_are_checked_too(task, change, message):
    with pytest.raises(ConfigError) as e:
        parse(
            {**BASE, "task": task, **change}, source="cfg.yaml", locations={k: "cfg.yaml:9" for k in change}
        )
    assert str(e.value).startswith(f"cfg.yaml:9: {message}")


def test_max_steps_stands_in_for_epochs():
    job = parse({**BASE, "num_train_epochs": 0, "max_steps": 10})
    assert job.train.max_steps == 10


def test_a_folder_without_a_model(tmp_path):
    with pytest.raises(ConfigError) as e:
        parse({**BASE, "model_name_or_path": str(tmp_path)}, locations={"model_name_or_path": "c.yaml:2"})
    assert str(e.value) == f"c.yaml:2: model_name_or_path {tmp_path} holds no model (no config.json)"
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a model folder"):
        parse({**BASE, "model_name_or_path": str(tmp_path / "weights.bin")})


@pytest.mark.parametrize("task", POOLING_TASKS)
def test_every_default_passes_the_checks_also_after_transformers_converted_it(task):
    """launch.py copies a built Config (dataclasses.replace): __post_init__ then sees the enums and objects
    TrainingArguments made of the YAML values, and must accept them."""
    job = parse({**BASE, "task": task, "eval_file": "e.jsonl"})
    copy = dataclasses.replace(job.train, use_cpu=True)
    assert isinstance(copy, config_class(task)) and copy.use_cpu


def test_llamafactory_flash_attn_values_become_attn_implementation():
    sft = {**BASE, "task": "sft"}
    assert parse({**sft, "flash_attn": "sdpa"}).model.attn_implementation == "sdpa"
    assert parse({**sft, "flash_attn": "disabled"}).model.attn_implementation == "eager"
    assert parse({**sft, "flash_attn": "auto"}).model.attn_implementation is None
    with pytest.raises(
        ConfigError, match="flash_attn must be one of auto, disabled, sdpa, fa2, fa3, not 'fast'"
    ):
        parse({**sft, "flash_attn": "fast"})


@pytest.mark.parametrize(
    "change, message",
    [
        # this machine has no CUDA and no flash-attn: each is one line before any data is read
        ({"flash_attn": "fa2"}, "attn_implementation: flash_attention_2 needs the flash-attn package"),
        ({"attn_implementation": "flex_attention"}, "flex_attention cannot train on CPU"),
        ({"attn_implementation": "paged"}, "attn_implementation must be one of sdpa, eager"),
        ({"quantization_bit": 4}, "set finetuning_type: lora"),
        ({"quantization_bit": 4, "finetuning_type": "lora"}, r"\(QLoRA, bitsandbytes\) needs a CUDA GPU"),
        ({"quantization_bit": 3}, "quantization_bit must be 4 or 8, not 3"),
        ({"eval_max_new_tokens": 0}, "eval_max_new_tokens must be > 0, not 0"),
        ({"train_on": "user"}, "train_on must be one of assistant, last_assistant, all, not 'user'"),
        (
            {"task": "classify", "attn_implementation": "sdpa"},
            "attn_implementation is for the generative tasks",
        ),
        ({"task": "embed", "quantization_bit": 4}, "quantization_bit is for the generative tasks, not embed"),
    ],
)
def test_generative_model_keys_are_checked_at_parse_time(change, message):
    with pytest.raises(ConfigError, match=message):
        parse({**BASE, "task": "sft", **change})
