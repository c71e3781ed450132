"""LLaMA-Factory YAML keys in mg-train's config: datasets named in dataset_info.json (comma lists, dataset_dir
relative to the current directory), max_samples, val_size split as LLaMA-Factory splits, warmup_ratio on
transformers 5, lora_target, the keys we do not implement (one line each), the keys that mean nothing here (one
note), and max_length defaults with the count of rows cut at it."""

from __future__ import annotations

import json
import math

import pytest

from mg_testing.datasets import pair_rows, write_jsonl
from mg_train.config import parse
from mg_train.errors import ConfigError
from mg_train.run import hold_out, load_data

BASE = {"stage": "sft", "model_name_or_path": "m", "train_file": "t.jsonl", "output_dir": "out"}


def dataset_dir(folder, **entries):
    """A dataset folder: each entry a file of rows (alpaca) declared in dataset_info.json."""
    folder.mkdir(exist_ok=True)
    info = {}
    for name, rows in entries.items():
        write_jsonl(folder / f"{name}.jsonl", rows)
        info[name] = {"file_name": f"{name}.jsonl"}
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def alpaca(n: int, tag: str) -> list[dict]:
    return [
        {"instruction": f"{tag} question {i}", "input": "", "output": f"{tag} answer {i}"} for i in range(n)
    ]


def lf(**keys) -> dict:
    mapping = {**BASE, **keys}
    if "dataset" in keys:
        del mapping["train_file"]
    return mapping


# --- datasets ------------------------------------------------------------------------------------------------


def test_a_comma_list_of_datasets_is_a_list_of_sources_in_order(tmp_path, monkeypatch):
    dataset_dir(tmp_path / "data", identity=alpaca(2, "id"), alpaca_en_demo=alpaca(3, "al"))
    monkeypatch.chdir(tmp_path)  # dataset_dir defaults to ./data, as in LLaMA-Factory
    job = parse(lf(dataset="identity, alpaca_en_demo"))
    info = tmp_path / "data" / "dataset_info.json"
    assert job.data.train_file == ["data/dataset_info.json#identity", "data/dataset_info.json#alpaca_en_demo"]
    assert job.raw["train_file"] == [f"{info}#identity", f"{info}#alpaca_en_demo"]  # the run log: absolute
    as_list = parse(lf(dataset=["identity", "alpaca_en_demo"], eval_dataset="identity"))
    assert as_list.data.train_file == job.data.train_file
    assert as_list.data.eval_file == "data/dataset_info.json#identity"


def test_dataset_dir_and_files_beside_the_entries(tmp_path):
    folder = dataset_dir(tmp_path / "lf", identity=alpaca(2, "id"))
    write_jsonl(folder / "extra.jsonl", alpaca(1, "x"))
    job = parse(lf(dataset="identity,extra.jsonl", dataset_dir=str(folder)))
    assert job.data.train_file == [f"{folder}/dataset_info.json#identity", f"{folder}/extra.jsonl"]


@pytest.mark.parametrize(
    "keys, message",
    [
        (
            {"dataset": "identiti"},
            "dataset: 'identiti' is not an entry of {dir}/dataset_info.json (nor a file); "
            "did you mean 'identity'?",
        ),
        ({"dataset": "identity", "dataset_dir": "REMOTE:llamafactory/demo_data"}, "dataset_dir REMOTE:"),
        ({"dataset": "identity", "train_file": "t.jsonl"}, "'dataset' and 'train_file' both given; keep one"),
        (
            {"dataset": "identity", "val_size": 0.1, "eval_dataset": "identity"},
            "val_size holds out training rows",
        ),
    ],
)
def test_dataset_errors_are_one_line(tmp_path, keys, message):
    folder = dataset_dir(tmp_path / "data", identity=alpaca(2, "id"))
    keys.setdefault("dataset_dir", str(folder))
    mapping = {**BASE, **keys}
    if "train_file" not in keys:
        del mapping["train_file"]
    with pytest.raises(ConfigError) as e:
        parse(mapping, source="lf.yaml", locations={k: f"lf.yaml:{i + 3}" for i, k in enumerate(keys)})
    assert message.format(dir=folder) in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("lf.yaml:")


def test_no_dataset_info_and_no_such_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"'identity': there is no data/dataset_info.json \(dataset_dir is 'data'"
    ):
        parse(lf(dataset="identity"))


def test_max_samples_cuts_each_source_and_val_size_holds_out_as_llamafactory(tmp_path):
    first, second = (
        write_jsonl(tmp_path / "a.jsonl", alpaca(5, "a")),
        write_jsonl(tmp_path / "b.jsonl", alpaca(5, "b")),
    )
    job = parse({**BASE, "train_file": [str(first), str(second)], "max_samples": 3})
    train, eval_ = load_data(job)
    assert [ex["messages"][0]["content"] for ex in train] == [
        "a question 0",
        "a question 1",
        "a question 2",
        "b question 0",
        "b question 1",
        "b question 2",
    ]
    assert eval_ == []
    split = parse({**BASE, "train_file": [str(first), str(second)], "val_size": 0.25, "seed": 7})
    train, eval_ = load_data(split)
    assert (len(train), len(eval_)) == (7, 3)  # ceil(0.25 x 10) held out
    counted = parse({**BASE, "train_file": [str(first), str(second)], "val_size": 4})
    assert [len(part) for part in load_data(counted)] == [6, 4]


@pytest.mark.parametrize("val_size, seed", [(0.1, 42), (0.25, 7), (3, 0)])
def test_hold_out_picks_the_rows_llamafactory_picks(val_size, seed):
    """LLaMA-Factory splits with HF datasets' train_test_split(test_size=val_size, seed=seed)."""
    from datasets import Dataset

    rows = [{"i": i} for i in range(23)]
    theirs = Dataset.from_list(rows).train_test_split(test_size=val_size, seed=seed)
    train, eval_ = hold_out(rows, val_size, seed)
    assert [r["i"] for r in eval_] == theirs["test"]["i"]
    assert [r["i"] for r in train] == theirs["train"]["i"]
    assert len(eval_) == (val_size if val_size >= 1 else math.ceil(val_size * 23))


def test_hold_out_leaves_something_to_train_on():
    with pytest.raises(ConfigError, match="val_size 5 holds out 5 of 5 training rows"):
        hold_out([{"i": i} for i in range(5)], 5, 0)


# --- training keys -------------------------------------------------------------------------------------------


def test_warmup_ratio_is_the_warmup_fraction_transformers_5_reads():
    job = parse({**BASE, "warmup_ratio": 0.1, "lr_scheduler_type": "cosine"})
    assert job.train.warmup_steps == 0.1
    # the Trainer's scheduler warms up for this many of its steps
    assert job.train.get_warmup_steps(100) == 10 and job.train.get_warmup_steps(7) == 1
    assert parse({**BASE, "warmup_ratio": "5e-2"}).train.get_warmup_steps(100) == 5


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"warmup_ratio": 1.0}, "warmup_ratio must be in [0, 1) (a fraction of the training steps), not 1.0"),
        ({"warmup_ratio": "fast"}, "warmup_ratio must be in [0, 1)"),
        ({"warmup_ratio": 0.1, "warmup_steps": 5}, "'warmup_ratio' and 'warmup_steps' both given"),
    ],
)
def test_warmup_ratio_errors(keys, message):
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        parse({**BASE, **keys})


@pytest.mark.parametrize(
    "keys, targets",
    [
        ({"lora_target": "all"}, "all-linear"),
        ({"lora_target": "q_proj, v_proj"}, ["q_proj", "v_proj"]),
        ({"lora_target_modules": "all"}, "all-linear"),
        ({"lora_target_modules": ["all"]}, "all-linear"),
        ({"lora_target_modules": ["q_proj"]}, ["q_proj"]),
        ({"lora_rank": 4}, "all-linear"),  # LLaMA-Factory's default target
    ],
)
def test_lora_target_reaches_peft_as_names_or_all_linear(keys, targets):
    job = parse({**BASE, "finetuning_type": "lora", **keys})
    assert job.model.lora_target_modules == targets


def test_llamafactory_lora_names_bring_its_lora_defaults():
    job = parse({**BASE, "lora_rank": 16, "lora_target": "all"})
    assert job.model.finetuning_type == "lora"  # LLaMA-Factory's default method
    assert (job.model.lora_r, job.model.lora_alpha, job.model.lora_dropout) == (16, 32, 0.0)
    ours = parse({**BASE, "finetuning_type": "lora", "lora_r": 16})  # our names: our defaults
    assert (ours.model.lora_alpha, ours.model.lora_dropout, ours.model.lora_target_modules) == (
        16,
        0.05,
        None,
    )


def test_lora_target_all_trains_every_linear_layer_but_the_head(tiny_decoder_dir):
    """rm (a sequence classifier) and sft (a causal LM): `all` adapts each linear layer; the head is not adapted
    (rm trains its new head in full)."""
    from mg_train.run import build_model
    from mg_train.tasks import get

    for stage, head in (("rm", "score"), ("sft", "lm_head")):
        job = parse(
            {**BASE, "stage": stage, "model_name_or_path": str(tiny_decoder_dir), "lora_target": "all"}
        )
        adapted = build_model(job, get(stage), None, None)
        linear = {n for n, m in adapted.named_modules() if type(m).__name__ == "Linear" and "lora_" not in n}
        adapted_layers = {
            n.removesuffix(".lora_A") for n, _ in adapted.named_modules() if n.endswith(".lora_A")
        }
        assert adapted_layers and not any(head in n for n in adapted_layers)
        assert {n.removesuffix(".base_layer") for n in linear if head not in n} == adapted_layers


def test_resume_from_checkpoint_null_loads():
    assert parse({**BASE, "resume_from_checkpoint": None}).train.resume_from_checkpoint is None


def test_train_on_prompt_mask_history_and_disable_shuffling():
    assert parse({**BASE, "train_on_prompt": True}).train.train_on == "all"
    assert parse({**BASE, "mask_history": True}).train.train_on == "last_assistant"
    assert parse({**BASE, "train_on_prompt": False}).train.train_on == "assistant"
    assert parse({**BASE, "disable_shuffling": True}).train.train_sampling_strategy == "sequential"
    with pytest.raises(ConfigError, match="train_on_prompt is for task sft"):
        parse({**BASE, "stage": "dpo", "train_on_prompt": True})


def test_packing_and_neat_packing():
    assert parse({**BASE, "neat_packing": True}).train.packing is True
    assert parse({**BASE, "packing": False, "neat_packing": True}).train.packing is True
    assert (
        parse({**BASE, "stage": "pt", "packing": None}).train.packing is True
    )  # LLaMA-Factory's null: pt packs
    dpo = parse({**BASE, "stage": "dpo", "packing": True, "pref_beta": 0.2})
    assert dpo.train.beta == 0.2
    assert "packing: not used by task dpo (LLaMA-Factory uses it in other stages only)" in dpo.notes


def test_a_preference_key_in_another_stage_is_noted_not_refused():
    job = parse({**BASE, "pref_beta": 0.1, "pref_loss": "sigmoid"})
    assert "pref_beta: not used by task sft (LLaMA-Factory uses it in other stages only)" in job.notes
    kto = parse({**BASE, "stage": "kto", "pref_loss": "sigmoid", "pref_beta": 0.3})
    assert kto.train.beta == 0.3 and any(n.startswith("pref_loss: not used by task kto") for n in kto.notes)


# --- keys we do not implement, and keys that mean nothing here -----------------------------------------------


@pytest.mark.parametrize(
    "key, value, says",
    [
        ("image_max_pixels", 262144, "multimodal inputs are not supported"),
        ("freeze_vision_tower", False, "multimodal inputs are not supported"),
        ("freeze_trainable_layers", 4, "finetuning_type freeze is not supported"),
        ("oft_rank", 8, "OFT is not supported"),
        ("use_dora", True, "only plain LoRA is supported"),
        ("use_galore", True, "transformers' optim"),
        (
            "ray_num_workers",
            4,
            "Ray is not supported: train on several GPUs with mg-train --nproc-per-node N",
        ),
        ("tokenized_path", "saves/ds", "mg-train tokenizes in memory at each run"),
        ("streaming", True, "streaming is not supported"),
        ("hf_hub_token", "hf_x", "set HF_TOKEN"),
        ("adapter_name_or_path", "a", "merge it into the model first"),
        ("use_fast_tokenizer", False, "the fast tokenizer is always used"),
        ("enable_torch_profiler", True, "profiler is not supported"),
    ],
)
def test_a_key_we_do_not_implement_is_one_line_naming_it(key, value, says):
    with pytest.raises(ConfigError) as e:
        parse({**BASE, key: value}, source="lf.yaml", locations={key: "lf.yaml:12"})
    assert str(e.value).startswith(f"lf.yaml:12: {key}: ") and says in str(e.value)
    assert "\n" not in str(e.value)


def test_at_llamafactorys_default_such_keys_change_nothing_and_load():
    job = parse(
        {
            **BASE,
            "freeze_vision_tower": True,
            "freeze_language_model": False,
            "image_max_pixels": 768 * 768,
            "use_dora": False,
            "ray_num_workers": 1,
            "mix_strategy": "concat",
            "tokenized_path": None,
            "profiler_wait_steps": 3,  # means something only with enable_torch_profiler
            "do_train": True,
        }
    )
    assert job.task == "sft" and not any("freeze" in n for n in job.notes)


def test_keys_without_effect_are_named_in_one_note():
    job = parse({**BASE, "plot_loss": True, "preprocessing_num_workers": 16, "overwrite_cache": True})
    [note] = [n for n in job.notes if n.startswith("not used here")]
    assert note == (
        "not used here: plot_loss (the run log keeps every curve: mg-eval report draws them); "
        "preprocessing_num_workers, overwrite_cache (mg-train tokenizes in memory at each run)"
    )


def test_stage_ppo_says_use_grpo_before_any_other_key():
    with pytest.raises(ConfigError, match="has no PPO trainer; use task: grpo"):
        parse({**BASE, "stage": "ppo", "max_samples": 5, "image_max_pixels": 1, "ppo_epochs": 2})


def test_trust_remote_code_true_loads_for_a_model_transformers_ships(tiny_decoder_dir, tmp_path):
    job = parse({**BASE, "model_name_or_path": str(tiny_decoder_dir), "trust_remote_code": True})
    assert any(n.startswith("trust_remote_code: true changes nothing") for n in job.notes)
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(
        json.dumps({"auto_map": {"AutoModel": "modeling_x.X"}}), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="brings its own model code"):
        parse({**BASE, "model_name_or_path": str(custom), "trust_remote_code": True})


def test_template_is_noted_where_it_is_not_used():
    rm = parse({**BASE, "stage": "rm", "template": "qwen3_nothink"})
    assert "template: qwen3_nothink not used by task rm" in " ".join(rm.notes)
    assert not any(n.startswith("template") for n in parse({**BASE, "template": "qwen"}).notes)


# --- max_length ----------------------------------------------------------------------------------------------


def model_folder(tmp_path, positions: int, tokenizer_max: float | None = None):
    folder = tmp_path / f"m{positions}"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": positions}), encoding="utf-8")
    if tokenizer_max is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": tokenizer_max}))
    return str(folder)


def test_pooling_tasks_default_to_the_models_own_maximum_capped(tmp_path):
    rm = {**BASE, "stage": "rm"}
    long = parse({**rm, "model_name_or_path": model_folder(tmp_path, 32768, 1e30)})
    assert long.model.max_length == 2048
    assert "max_length: 2048 (the model takes up to 32768 tokens; capped at 2048" in " ".join(long.notes)
    roberta = parse({**rm, "model_name_or_path": model_folder(tmp_path, 514, 512)})
    assert roberta.model.max_length == 512 and "max_length: 512 (the model's own maximum)" in roberta.notes
    assert parse({**rm, "model_name_or_path": "not/here"}).model.max_length == 512
    assert (
        parse({**rm, "model_name_or_path": model_folder(tmp_path, 9000), "cutoff_len": 100}).model.max_length
        == 100
    )
    # generative tasks keep 512: there max_length is also a packed row's length
    assert parse({**BASE, "model_name_or_path": model_folder(tmp_path, 4096)}).model.max_length == 512


def test_rows_longer_than_max_length_are_counted(tiny_decoder_dir, tmp_path):
    from transformers import AutoTokenizer

    from mg_heads.tokenize import ensure_pad_token
    from mg_train.tasks import get
    from mg_train.tasks.base import count_truncated

    rows = pair_rows()
    long = {"prompt": "word " * 300, "chosen": "yes", "rejected": "no"}
    job = parse({**BASE, "stage": "rm", "model_name_or_path": str(tiny_decoder_dir), "cutoff_len": 64})
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    ensure_pad_token(tokenizer)
    task = get("rm")
    assert count_truncated(task, tokenizer, job, None, rows) == 0
    assert count_truncated(task, tokenizer, job, None, [*rows, long, long], batch_size=3) == 2
