"""The rewards of a grpo run, named in the config's `reward_funcs`; each entry is one of:

- `path/to/rewards.py:fn`: a function in a Python file. A relative path is read from the current directory,
  like every other path of a config (train_file, model_name_or_path), not from the config file's folder.
- `package.module:fn`: a function of an importable module (`trl.rewards:think_format_reward`).
- a folder exported by mg-train's `rm` task (its mg_export.json says task rm): a sequence classifier that
  TRL scores prompt + completion with (rendered by the reward model's own chat template).

A function takes TRL's arguments: `prompts`, `completions`, `completion_ids`, `trainer_state`, `log_extra`,
`log_metric`, and every other column of the data as a keyword argument (one value per completion), and
returns one float (or None) per completion. A wrong entry is a ConfigError naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mg_train.errors import ConfigError

# What TRL 1.16's GRPOTrainer passes to every reward function besides the data columns (_calculate_rewards).
TRL_ARGUMENTS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric")
KEY = "reward_funcs"


@dataclass(frozen=True)
class RewardModel:
    """A reward model folder (exported by the rm task), loaded when the trainer is built."""

    path: Path


Reward = Any  # a callable or a RewardModel


def load(entries: list[str], columns: set[str]) -> list[Reward]:
    """Every entry of `reward_funcs`, checked; `columns` are the data columns a function receives."""
    if not entries:
        raise ConfigError(
            "reward_funcs is empty: name at least one reward (path/to/rewards.py:fn, package.module:fn or a "
            "folder exported by mg-train's rm task)",
            key=KEY,
        )
    return [load_one(entry, columns) for entry in entries]


def load_one(entry: str, columns: set[str]) -> Reward:
    if Path(entry).is_dir():
        return reward_model(entry)
    where, sep, name = entry.rpartition(":")
    if not sep or not where or not name:
        raise ConfigError(
            f"reward_funcs: {entry!r} is not a reward: expected path/to/rewards.py:function, "
            "package.module:function or a folder exported by mg-train's rm task",
            key=KEY,
        )
    module = _from_file(entry, where) if where.endswith(".py") or "/" in where else _from_module(entry, where)
    func = getattr(module, name, None)
    if func is None:
        raise ConfigError(f"reward_funcs: {entry!r}: {where} has no {name!r}", key=KEY)
    if not callable(func):
        raise ConfigError(
            f"reward_funcs: {entry!r}: {name} is a {type(func).__name__}, not a function", key=KEY
        )
    _check_signature(entry, func, columns)
    return func


def _from_file(entry: str, where: str):
    path = Path(where).resolve()
    if not path.is_file():
        raise ConfigError(
            f"reward_funcs: {entry!r}: no such file {path} (a relative path is read from the current directory, "
            f"{Path.cwd()})",
            key=KEY,
        )
    # One module per file (by its absolute path), registered so that pickling and dataclasses inside it work.
    name = f"mg_rewards_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ConfigError(
            f"reward_funcs: {entry!r}: {path} failed to import: {_one_line(e)}", key=KEY
        ) from None
    return module


def _from_module(entry: str, where: str):
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as e:
        raise ConfigError(
            f"reward_funcs: {entry!r}: no module named {e.name!r} (a file needs its .py suffix)", key=KEY
        ) from None
    except Exception as e:
        raise ConfigError(
            f"reward_funcs: {entry!r}: {where} failed to import: {_one_line(e)}", key=KEY
        ) from None


def _check_signature(entry: str, func, columns: set[str]) -> None:
    """TRL calls every function with its own arguments and the data columns as keywords: a function that takes
    neither **kwargs nor one of them would fail at the first step; say it now."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: nothing to read
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [a for a in (*TRL_ARGUMENTS, *sorted(columns)) if a not in names]
    if missing:
        raise ConfigError(
            f"reward_funcs: {entry!r} does not take {', '.join(missing)}: TRL passes {', '.join(TRL_ARGUMENTS)} "
            "and every data column as keyword arguments; end its parameters with **kwargs",
            key=KEY,
        )


def reward_model(entry: str) -> RewardModel:
    path = Path(entry)
    info = path / "mg_export.json"
    task = None
    if info.is_file():
        try:
            task = json.loads(info.read_text(encoding="utf-8")).get("task")
        except (json.JSONDecodeError, AttributeError):
            task = None
    if task != "rm":
        what = f"an export of task {task}" if task else "no mg-train export (no mg_export.json)"
        raise ConfigError(
            f"reward_funcs: {entry!r} is a folder but {what}; a reward model folder is what mg-train's rm task "
            "exports (<output_dir>/model)",
            key=KEY,
        )
    return RewardModel(path)


def load_reward_model(reward: RewardModel, *, conversational: bool):
    """The reward model and its tokenizer, as GRPOTrainer takes them (reward_funcs, reward_processing_classes)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from mg_heads.tokenize import ensure_pad_token

    tokenizer = AutoTokenizer.from_pretrained(reward.path)
    ensure_pad_token(tokenizer)
    if conversational and not tokenizer.chat_template:
        # TRL renders prompt + completion with the reward model's chat template; without one it would fail at step 1.
        raise ConfigError(
            f"reward_funcs: {str(reward.path)!r}: the prompts are conversations but the reward model's tokenizer has "
            "no chat template to render them with",
            key=KEY,
        )
    model = AutoModelForSequenceClassification.from_pretrained(reward.path).eval()
    return model, tokenizer


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"
