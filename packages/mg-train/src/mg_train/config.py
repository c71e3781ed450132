"""One flat config for every task: model, data and training fields in one mapping (YAML + flags).

`parse(mapping)` maps alias names (aliases.py), picks the task's Config class, and splits the mapping into
ModelArgs, DataArgs and the task's TrainingArguments subclass. An unknown key is an error naming the
nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field
from typing import Any

from mg_train.aliases import apply_aliases

TASKS = ("classify", "rm", "embed", "rerank", "score")
GENERATIVE = ("pt", "sft", "dpo", "ppo", "grpo", "kto")


class ConfigError(ValueError):
    """A config the user must fix; the message names the key."""


@dataclass
class ModelArgs:
    model_name_or_path: str = field(
        default=None, metadata={"help": "HF model folder (or a name in the HF cache)."}
    )
    finetuning_type: str = field(default="full", metadata={"help": "full or lora."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | str | None = field(
        default=None,
        metadata={"help": "Modules to adapt (names or 'all'); default: every linear layer but the head."},
    )
    pooling: str | None = field(
        default=None, metadata={"help": "embed: cls, mean or last (default by backbone)."}
    )
    normalize: bool = field(default=True, metadata={"help": "embed: L2-normalize embeddings."})
    max_length: int = field(default=512, metadata={"help": "Truncate inputs to this many tokens."})


@dataclass
class DataArgs:
    train_file: str = field(
        default=None, metadata={"help": "Training data: any file and layout mg-data reads."}
    )
    eval_file: str | None = field(
        default=None, metadata={"help": "Held-out data for evaluation during training."}
    )
    val_size: float = field(
        default=0.0, metadata={"help": "Without eval_file: hold out this fraction of train."}
    )
    preview_samples: int = field(
        default=3, metadata={"help": "Samples printed (as the model sees them) before step 1."}
    )


@dataclass
class TrainJob:
    task: str
    model: ModelArgs
    data: DataArgs
    train: Any  # the task's Config (a transformers.TrainingArguments subclass)
    raw: dict  # the resolved mapping, written to the run log


def config_class(task: str):
    from mg_train.tasks import get

    return get(task).Config


def parse(
    mapping: dict[str, Any], *, source: str = "config", locations: dict[str, str] | None = None
) -> TrainJob:
    """`locations` says where each key was given ("file.yaml:7", "flag --lr"), so errors name the place."""
    locations = locations or {}

    def at(key: str) -> str:
        return locations.get(key, source)

    mapping = apply_aliases(dict(mapping), source=source)
    task = mapping.pop("task", None)
    if task is None:
        raise ConfigError(
            f"{source}: missing 'task' (one of {', '.join(TASKS)}; LLaMA-Factory's 'stage' works too)"
        )
    if task in GENERATIVE:
        raise ConfigError(
            f"{source}: task {task!r} is generative; run it through the LLaMA-Factory backend "
            "(mg-train --llamafactory) until mg-train's own generative trainers land"
        )
    if task not in TASKS:
        raise ConfigError(f"{at('task')}: task {task!r} is not one of {', '.join(TASKS)}")
    cls = config_class(task)
    groups = {"model": ModelArgs, "data": DataArgs, "train": cls}
    names = {g: {f.name for f in dataclasses.fields(c) if f.init} for g, c in groups.items()}
    valid = set().union(*names.values())
    for key in mapping:
        if key not in valid:
            near = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{at(key)}: unknown key {key!r}{hint}")
    parts = {
        g: {k: _coerce(c, k, v, at(k)) for k, v in mapping.items() if k in names[g]}
        for g, c in groups.items()
    }
    model, data = ModelArgs(**parts["model"]), DataArgs(**parts["data"])
    for obj, key in ((model, "model_name_or_path"), (data, "train_file")):
        if not getattr(obj, key):
            raise ConfigError(f"{source}: missing {key!r}")
    if model.finetuning_type not in ("full", "lora"):
        raise ConfigError(
            f"{at('finetuning_type')}: finetuning_type must be full or lora, not {model.finetuning_type!r}"
        )
    if parts["train"].get("output_dir") is None:
        raise ConfigError(f"{source}: missing 'output_dir'")
    train_kwargs = {**cls.defaults_for(has_eval=bool(data.eval_file or data.val_size)), **parts["train"]}
    try:
        train = cls(**train_kwargs)
    except (ValueError, TypeError) as e:  # TrainingArguments' own checks (e.g. strategies that don't match)
        raise ConfigError(f"{source}: {e}") from None
    raw = {"task": task, **mapping}
    for path_key in ("train_file", "eval_file"):
        if raw.get(path_key):
            raw[path_key] = os.path.abspath(raw[path_key])
    return TrainJob(task=task, model=model, data=data, train=train, raw=raw)


def _coerce(cls, key: str, value: Any, where: str) -> Any:
    """YAML 1.1 reads `5e-5` (no dot) as a string: turn strings into the number or bool the field wants."""
    if not isinstance(value, str):
        return value
    hint = str(typing.get_type_hints(cls).get(key, ""))
    try:
        if hint in ("<class 'float'>", "float | None"):
            return float(value)
        if hint in ("<class 'int'>", "int | None"):
            return int(value)
    except ValueError:
        raise ConfigError(f"{where}: {key} must be a number, not {value!r}") from None
    if hint in ("<class 'bool'>", "bool | None") and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    return value
