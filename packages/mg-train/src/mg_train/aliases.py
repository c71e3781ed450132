"""Names other tools use for our config keys: one table, applied before anything else reads a config.

transformers TrainingArguments names are ours already (the task Config subclasses it). The table maps
LLaMA-Factory YAML, TRL and sentence-transformers names, and the seed's spellings.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mg_train.errors import ConfigError

# alias -> our key
ALIASES: dict[str, str | None] = {
    # LLaMA-Factory
    "stage": "task",
    "cutoff_len": "max_length",
    "lora_rank": "lora_r",
    "lora_target": "lora_target_modules",
    "eval_dataset": "eval_file",
    "flash_attn": "attn_implementation",  # values translated: FLASH_ATTN
    "max_samples": None,  # handled below (no silent truncation support yet): rejected with a clear message
    "max_prompt_length": None,  # TRL < 1.0's; refused below with what TRL 1.x does instead
    # LLaMA-Factory's RLHF arguments (dpo, kto): our keys are TRL's names
    "pref_beta": "beta",
    "pref_loss": "loss_type",
    "dpo_label_smoothing": "label_smoothing",
    "kto_chosen_weight": "desirable_weight",
    "kto_rejected_weight": "undesirable_weight",
    "neat_packing": "packing",  # LLaMA-Factory's packing without cross-attention: what our packing does
    # TRL / sentence-transformers / HF datasets
    "max_seq_length": "max_length",
    "model_name": "model_name_or_path",
    "model": "model_name_or_path",
    "train_dataset": "train_file",
    "validation_file": "eval_file",
    "test_file": "eval_file",
    "pooling_mode": "pooling",
    "normalize_embeddings": "normalize",
    # the seed
    "train_data": "train_file",
    "eval_data": "eval_file",
}
# LLaMA-Factory's stage names are our task names (mg_data.tasks.Task): `stage` maps to `task` as it is.
# Accepted so that LLaMA-Factory YAMLs load, but meaningless for pooling tasks (no chat template is applied);
# config.parse drops them unless a config of ours has a field of that name.
IGNORED = {
    "do_train",
    "do_eval",
    "overwrite_cache",
    "preprocessing_num_workers",
    "plot_loss",
    "dataloader_num_workers_lf",
}


# LLaMA-Factory's `flash_attn` values -> transformers' attn_implementation (auto: transformers' own choice).
FLASH_ATTN = {
    "auto": None,
    "disabled": "eager",
    "sdpa": "sdpa",
    "fa2": "flash_attention_2",
    "fa3": "flash_attention_3",
}


def apply_aliases(mapping: dict[str, Any], *, source: str = "config") -> dict[str, Any]:
    """`mapping` with every alias renamed to our key; IGNORED keys are kept (config.parse drops them)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == "max_samples":
            raise ConfigError(f"{source}: max_samples is not supported; cut the data file instead (mg-data)")
        if key == "max_prompt_length":
            raise ConfigError(
                f"{source}: max_prompt_length is gone from TRL 1.x (pinned here): prompt and answer are cut together "
                "at max_length (cutoff_len), keeping the start; remove the key"
            )
        if key in ("dataset", "dataset_dir"):
            continue  # resolved together below
        target = ALIASES.get(key) or key  # max_samples, the one None, was refused above
        if key == "flash_attn":
            if value not in FLASH_ATTN:
                raise ConfigError(
                    f"{source}: flash_attn must be one of {', '.join(FLASH_ATTN)}, not {value!r}"
                )
            value = FLASH_ATTN[value]
            if value is None:
                continue
        if target in out and out[target] != value:
            raise ConfigError(f"{source}: {key!r} and {target!r} both given with different values")
        out[target] = value
    if "dataset" in mapping:
        out.setdefault("train_file", _lf_dataset(mapping["dataset"], mapping.get("dataset_dir"), source))
    if out.get("finetuning_type") == "freeze":
        raise ConfigError(f"{source}: finetuning_type freeze is not supported (full or lora)")
    return out


def _lf_dataset(name: Any, dataset_dir: str | None, source: str) -> str:
    """LLaMA-Factory's `dataset` names an entry of dataset_dir/dataset_info.json (or is a path)."""
    if isinstance(name, list | tuple) or (isinstance(name, str) and "," in name):
        raise ConfigError(
            f"{source}: dataset: several datasets are not supported yet; concatenate them into one file"
        )
    if dataset_dir:
        info_path = os.path.join(dataset_dir, "dataset_info.json")
        if os.path.isfile(info_path):
            with open(info_path, encoding="utf-8") as f:
                info = json.load(f)
            if name in info:
                entry = info[name]
                if "file_name" not in entry:
                    raise ConfigError(
                        f"{info_path}: dataset {name!r} has no file_name (hub datasets are not reachable)"
                    )
                return os.path.join(dataset_dir, entry["file_name"])
        return os.path.join(dataset_dir, name)
    return str(name)
