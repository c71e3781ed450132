"""One flat config for every task: model, data and training fields in one mapping (YAML + flags).

`parse(mapping)` maps alias names (aliases.py), picks the task's Config class, and splits the mapping into
ModelArgs, DataArgs and the task's TrainingArguments subclass. An unknown key is an error naming the
nearest valid key; a wrong value is an error naming the key and where it was given, raised by the config
objects' own checks (args.py) before any data is read. `help_groups` lists the same fields for --help.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass
from typing import Any

from transformers import TrainingArguments

from mg_train.aliases import ALIASES, apply_aliases
from mg_train.args import (
    LIMITS,
    DataArgs,
    ModelArgs,
    TrainJob,
    matches,
    pooling_max_length,
    shown,
    type_hints,
    type_name,
)
from mg_train.errors import ConfigError
from mg_train.tasks import TASKS, get, is_generative
from mg_train.tasks.base import TaskConfig

__all__ = ["ConfigError", "DataArgs", "ModelArgs", "TrainJob", "config_class", "help_groups", "parse"]


def config_class(task: str) -> type[TaskConfig]:
    return get(task).Config


def parse(
    mapping: dict[str, Any], *, source: str = "config", locations: dict[str, str] | None = None
) -> TrainJob:
    """`locations` says where each key was given ("file.yaml:7", "flag --lr"), so errors name the place."""
    locations = _through_aliases(locations or {})

    def at(key: str | None) -> str:
        return locations.get(key, source) if key else source

    # The task first (LLaMA-Factory's stage: ppo says what to use instead before any other key is looked at).
    task = mapping.get("task", mapping.get("stage"))
    if task is None:
        raise ConfigError(
            f"{source}: missing 'task' (one of {', '.join(TASKS)}; LLaMA-Factory's 'stage' works too)"
        )
    try:
        cls = config_class(task)
    except ConfigError as e:
        raise ConfigError(f"{at('task')}: {e}") from None
    groups = {"model": ModelArgs, "data": DataArgs, "train": cls}
    names = {g: {f.name for f in dataclasses.fields(c) if f.init} for g, c in groups.items()}
    valid = set().union(*names.values())
    notes: list[str] = []
    mapping = apply_aliases(dict(mapping), source=source, task=task, fields=valid, at=at, notes=notes)
    mapping.pop("task", None)
    for key in mapping:
        if key not in valid:
            near = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"{at(key)}: unknown key {key!r}{hint}")
    parts = {
        g: {k: _coerce(c, k, v, at(k)) for k, v in mapping.items() if k in names[g]}
        for g, c in groups.items()
    }
    for key in ("quantization_bit", "attn_implementation"):
        if parts["model"].get(key) and not is_generative(task):
            raise ConfigError(f"{at(key)}: {key} is for the generative tasks, not {task}")
    for group, key in (("model", "model_name_or_path"), ("data", "train_file"), ("train", "output_dir")):
        if parts[group].get(key) is None:
            raise ConfigError(f"{source}: missing {key!r}")
    train_kwargs = {
        **cls.defaults_for(has_eval=bool(parts["data"].get("eval_file") or parts["data"].get("val_size"))),
        **parts["train"],
    }
    try:
        model, data = ModelArgs(**parts["model"]), DataArgs(**parts["data"])
        train = cls(**train_kwargs)
    except ConfigError as e:  # our checks (args.py): they name the key, we add where it was given
        raise ConfigError(f"{at(e.key)}: {e}") from None
    except (ValueError, TypeError, OSError) as e:  # TrainingArguments' own (a strategy mismatch, a missing
        raise ConfigError(f"{source}: {e}") from None  # DeepSpeed config file)
    if "max_length" not in parts["model"] and not is_generative(task):
        model.max_length, note = pooling_max_length(model.model_name_or_path)
        notes.append(note)
    notes += _model_notes(task, model, data)
    raw = {"task": task, **mapping}
    for path_key in ("train_file", "eval_file"):
        if raw.get(path_key):
            raw[path_key] = _absolute(raw[path_key])
    return TrainJob(task=task, model=model, data=data, train=train, raw=raw, notes=notes)


def _absolute(value: str | list[str]) -> str | list[str]:
    """Sources named relative to the current directory, as LLaMA-Factory's dataset_dir is, made absolute (a
    dataset_info.json reference keeps its #NAME)."""
    return os.path.abspath(value) if isinstance(value, str) else [os.path.abspath(v) for v in value]


def _model_notes(task: str, model: ModelArgs, data: DataArgs) -> list[str]:
    notes = []
    if data.template and (not is_generative(task) or task == "pt"):
        why = (
            "raw text has no chat template"
            if task == "pt"
            else "conversations are rendered by the tokenizer's own chat template"
        )
        notes.append(f"template: {data.template} not used by task {task} ({why})")
    if model.trust_remote_code:
        notes.append(
            "trust_remote_code: true changes nothing: the model's code is transformers' own (mg-train runs no "
            "code from a model folder)"
        )
    return notes


def _through_aliases(locations: dict[str, str]) -> dict[str, str]:
    """Where our key was given when the user wrote an alias of it (`cutoff_len: -5` -> max_length)."""
    out = dict(locations)
    for alias, target in ALIASES.items():
        if target and alias in locations:
            out.setdefault(target, locations[alias])
    return out


def _coerce(cls, key: str, value: Any, where: str) -> Any:
    """YAML 1.1 reads `5e-5` (no dot) as a string: turn strings into the number or bool the field wants.

    Only where the field takes no string; the type itself is checked by the config object (args.py)."""
    hint = type_hints(cls).get(key)
    if not isinstance(value, str) or hint is None or matches(value, hint):
        return value
    if matches(0.5, hint) or matches(0, hint):
        try:
            return float(value) if matches(0.5, hint) else int(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a number, not {value!r}") from None
    if matches(True, hint) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    return value


# --- what `mg-train --help` shows -------------------------------------------------------------------


@dataclass
class FieldHelp:
    name: str
    type: str
    default: str  # as YAML writes it; "required" when there is none
    help: str
    aliases: list[str]


# TrainingArguments every run sets or thinks about, shown without --all (besides the ones we check or
# give a default of our own).
TRAINING_SHOWN = (
    "output_dir",
    "num_train_epochs",
    "max_steps",
    "resume_from_checkpoint",
    "seed",
    "bf16",
    "fp16",
)
REQUIRED = {"model_name_or_path", "train_file", "output_dir"}


def help_groups(task: str | None = None, *, everything: bool = False) -> list[tuple[str, list[FieldHelp]]]:
    """(title, fields) for --help: model and data fields, the training fields mg-train sets a default for or
    checks, the task's own fields when `task` is given, and with `everything` all other TrainingArguments."""
    base = TaskConfig if task is None else config_class(task)
    shared = {f.name for f in dataclasses.fields(TaskConfig) if f.init}
    ours = _our_training_defaults()
    shown_names = [
        n for n in sorted(shared) if n in ours or n in LIMITS or n in TRAINING_SHOWN or n in _eval_defaults()
    ]
    groups = [
        ("model", _fields(ModelArgs, [f.name for f in dataclasses.fields(ModelArgs)])),
        ("data", _fields(DataArgs, [f.name for f in dataclasses.fields(DataArgs)])),
        (
            "training (transformers TrainingArguments that mg-train sets or checks)",
            _fields(base, shown_names),
        ),
    ]
    if task is not None:
        own = [f.name for f in dataclasses.fields(base) if f.init and f.name not in shared]
        groups.append((f"{task} task", _fields(base, own)))
    if everything:
        rest = [n for n in sorted(shared) if n not in shown_names]
        groups.append(("all other TrainingArguments", _fields(base, rest)))
    return groups


def _fields(cls, names: list[str]) -> list[FieldHelp]:
    hints = type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    aliases: dict[str, list[str]] = {}
    for alias, target in ALIASES.items():
        if target:
            aliases.setdefault(target, []).append(alias)
    evals = _eval_defaults(cls) if issubclass(cls, TaskConfig) else {}
    out = []
    for name in names:
        f = by_name[name]
        help_text = " ".join(str(f.metadata.get("help", "")).split())
        out.append(
            FieldHelp(
                name=name,
                type=type_name(hints[name]),
                default=evals.get(name) or _default(f),
                help=help_text,
                aliases=aliases.get(name, []),
            )
        )
    return out


def _default(f: dataclasses.Field) -> str:
    if f.name in REQUIRED:
        return "required"
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    return (
        str(value.value)
        if hasattr(value, "value") and not isinstance(value, int | float | str)
        else _yaml(value)
    )


def _yaml(value: Any) -> str:
    return value if isinstance(value, str) else shown(value)


def _our_training_defaults() -> set[str]:
    """TaskConfig fields whose default is not TrainingArguments' own."""
    theirs = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    return {
        f.name
        for f in dataclasses.fields(TaskConfig)
        if f.init and (f.name not in theirs or _default(f) != _default(theirs[f.name]))
    }


def _eval_defaults(cls: type[TaskConfig] = TaskConfig) -> dict[str, str]:
    """Defaults that depend on whether there is eval data (TaskConfig.defaults_for)."""
    without, with_eval = cls.defaults_for(has_eval=False), cls.defaults_for(has_eval=True)
    return {
        key: f"{_yaml(without[key]) if key in without else 'HF default'} "
        f"({_yaml(with_eval[key])} with eval data)"
        for key in with_eval
    }


def task_summaries() -> list[tuple[str, str]]:
    """(task, the first line of its module's docstring) for every task mg-train trains."""
    out: list[tuple[str, str]] = []
    for task in TASKS:
        doc = (get(task).__doc__ or "").strip()
        line = doc.split("\n\n")[0].replace("\n", " ")
        out.append((task, line.split(": ", 1)[1] if line.startswith(task) and ": " in line else line))
    return out
