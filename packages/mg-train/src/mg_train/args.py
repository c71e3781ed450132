"""ModelArgs, DataArgs and TrainJob, and the value checks they share with the task Configs (tasks/base.py).

Every value is checked where its config object is built (`__post_init__`), so a wrong value stops the run
before any data is read: its type against the field's type hint (a bool is not a number, a string is not a
list, `[8]` is not an integer) and its range (`LIMITS` here, a task Config's own `limits`). A check names
the key (`ConfigError.key`); `config.parse` adds where the key was given.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mg_heads.pooling import POOLING_MODES
from mg_train.errors import ConfigError

# Values a YAML file or a flag can hold. Anything else was built by code (an enum TrainingArguments made
# of a string, its AcceleratorConfig made of a dict) and is trusted.
YAML_TYPES = (bool, int, float, str, list, tuple, dict, type(None))

# max_length when it is not given: generative tasks (it is also the length of a packed row: a memory budget)
# keep DEFAULT_MAX_LENGTH; pooling tasks pad each batch to its longest row only, so they take the model's own
# maximum, capped (rows of a 32k-token model would otherwise be allowed to 32k tokens).
DEFAULT_MAX_LENGTH = 512
MAX_LENGTH_CAP = 2048
# config.json keys that hold a model's maximum positions, by architecture family
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")


@dataclass(frozen=True)
class Limit:
    test: Callable[[Any], bool]
    says: str  # completes "<key> must be ..."


def positive() -> Limit:
    return Limit(lambda v: v > 0, "> 0")


def at_least(low: int) -> Limit:
    return Limit(lambda v: v >= low, f">= {low}")


def fraction() -> Limit:
    return Limit(lambda v: 0 <= v < 1, "in [0, 1)")


def one_of(*choices: str) -> Limit:
    return Limit(lambda v: v in choices, "one of " + ", ".join(choices))


def each(limit: Limit) -> Limit:
    return Limit(lambda v: all(limit.test(x) for x in v), f"a list of values {limit.says}")


# Ranges of the keys every task has (ModelArgs, DataArgs, the TrainingArguments that matter); a task
# Config adds its own in a `limits` class attribute. None (unset) is never checked against a range.
LIMITS: dict[str, Limit] = {
    "finetuning_type": one_of("full", "lora"),
    "lora_r": positive(),
    "lora_alpha": positive(),
    "lora_dropout": fraction(),
    "pooling": one_of(*POOLING_MODES),
    "max_length": positive(),
    # LLaMA-Factory's: a fraction of the training rows, or a number of rows
    "val_size": Limit(
        lambda v: 0 <= v < 1 or (v >= 1 and float(v).is_integer()),
        "a fraction in [0, 1) or a number of rows (an integer >= 1)",
    ),
    "max_samples": positive(),
    "preview_samples": at_least(0),
    "per_device_train_batch_size": positive(),
    "per_device_eval_batch_size": positive(),
    "gradient_accumulation_steps": positive(),
    "learning_rate": positive(),
    "weight_decay": at_least(0),
    "warmup_steps": at_least(0),
    "max_grad_norm": at_least(0),
    "logging_steps": positive(),
    "eval_steps": positive(),
    "save_steps": positive(),
    "dataloader_num_workers": at_least(0),
    "quantization_bit": Limit(lambda v: v in (4, 8), "4 or 8"),
    "attn_implementation": one_of(
        "sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"
    ),
}


@dataclass
class ModelArgs:
    model_name_or_path: str = field(metadata={"help": "HF model folder (or a name in the HF cache)."})
    finetuning_type: str = field(default="full", metadata={"help": "full or lora."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | str | None = field(
        default=None,
        metadata={
            "help": "Modules to adapt: names (a list, or LLaMA-Factory's comma list) or 'all' (every linear "
            "layer but the head); default: peft's choice for the architecture (the attention's q and v)."
        },
    )
    pooling: str | None = field(
        default=None, metadata={"help": "embed: cls, mean or last (default by backbone)."}
    )
    normalize: bool = field(default=True, metadata={"help": "embed: L2-normalize embeddings."})
    max_length: int = field(
        default=DEFAULT_MAX_LENGTH,
        metadata={
            "help": "Truncate inputs to this many tokens (generative: also the length of a packed row). Not "
            f"given: {DEFAULT_MAX_LENGTH} for the generative tasks; for the pooling tasks the model's own "
            f"maximum, capped at {MAX_LENGTH_CAP} (512 when unknown)."
        },
    )
    quantization_bit: int | None = field(
        default=None,
        metadata={
            "help": "Generative, CUDA only: load the model in 4 (QLoRA) or 8 bits (bitsandbytes); LoRA."
        },
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "Generative: sdpa (default), eager, flash_attention_2/3 (flash-attn installed, CUDA) or "
            "flex_attention (CUDA). Packed rows stay apart with each (mg_heads.packing)."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "mg-train never runs model code from a model folder: true (in every LLaMA-Factory example) "
            "is accepted for a model whose code transformers ships, refused for one that brings its own."
        },
    )

    def __post_init__(self):
        check_fields(self, LIMITS)
        self.lora_target_modules = lora_targets(self.lora_target_modules)
        check_model_folder(self.model_name_or_path)
        if self.trust_remote_code:
            check_no_remote_code(self.model_name_or_path)
        if self.quantization_bit:
            check_quantization(self.quantization_bit, self.finetuning_type)
        if self.attn_implementation:
            check_attention(self.attn_implementation)


def lora_targets(value: list[str] | str | None) -> list[str] | str | None:
    """What peft takes: LLaMA-Factory's `all` (alone or in a list) is peft's "all-linear" (every linear layer
    but the output layer); a comma list (LLaMA-Factory's `q_proj,v_proj`) is a list of names, since peft reads
    a string as one regular expression."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [n.strip() for n in value]
    names = [n for n in names if n]
    if not names:
        raise ConfigError("lora_target_modules names no module", key="lora_target_modules")
    if any(n in ("all", "all-linear") for n in names):
        return "all-linear"
    return names


def check_no_remote_code(path: str) -> None:
    """trust_remote_code: true is harmless for a model whose code transformers ships (no `auto_map` in its
    config.json): nothing remote would run. A model that brings its own code is refused: honouring it would also
    need the code copied into the export and `vllm serve --trust-remote-code`."""
    config = model_config_file(path)
    if config is None:
        return
    try:
        with open(config, encoding="utf-8") as f:
            auto_map = json.load(f).get("auto_map")
    except (OSError, ValueError, AttributeError):
        return
    if auto_map:
        raise ConfigError(
            f"trust_remote_code: {path} brings its own model code (auto_map in config.json), which mg-train does "
            "not run: only model code that transformers ships",
            key="trust_remote_code",
        )


def model_config_file(path: str | None, name: str = "config.json") -> str | None:
    """A model's `name` file: in its folder, or in the HF cache for a hub name (never downloaded here)."""
    if not path:
        return None
    if os.path.isdir(path):
        candidate = os.path.join(path, name)
        return candidate if os.path.isfile(candidate) else None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(path, name)
    except Exception:  # not a repo id (a missing folder, a typo): the model load says so later
        return None
    return found if isinstance(found, str) else None


def model_max_length(path: str) -> int | None:
    """The most tokens the model takes, where its files say: the smaller of its config's positions and its
    tokenizer's model_max_length (RoBERTa's 514 positions hold 512 tokens); None when neither says."""
    known: list[int] = []
    config = _read_json(model_config_file(path))
    for section in (config, config.get("text_config") or {}):
        for key in POSITION_KEYS:
            if isinstance(section.get(key), int) and section[key] > 0:
                known.append(section[key])
                break
        if known:
            break
    tokenizer = _read_json(model_config_file(path, "tokenizer_config.json"))
    limit = tokenizer.get("model_max_length")
    if isinstance(limit, int | float) and 0 < limit < 10**7:  # transformers writes 1e30 for "unknown"
        known.append(int(limit))
    return min(known) if known else None


def _read_json(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pooling_max_length(path: str) -> tuple[int, str]:
    """max_length for a pooling task that does not give it, and the one-line note that says where it comes from."""
    own = model_max_length(path)
    if own is None:
        return DEFAULT_MAX_LENGTH, (
            f"max_length: {DEFAULT_MAX_LENGTH} (the model's maximum length is unknown; set max_length to change it)"
        )
    if own > MAX_LENGTH_CAP:
        return MAX_LENGTH_CAP, (
            f"max_length: {MAX_LENGTH_CAP} (the model takes up to {own} tokens; capped at {MAX_LENGTH_CAP}: set "
            "max_length to use more)"
        )
    return own, f"max_length: {own} (the model's own maximum)"


def check_attention(name: str) -> None:
    """What each attention needs, said before any data is read (transformers would say it at model load)."""
    import importlib.util

    import torch

    needs = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}
    if name in needs and importlib.util.find_spec(needs[name]) is None:
        raise ConfigError(
            f"attn_implementation: {name} needs the flash-attn package (CUDA): pip install flash-attn, or use sdpa",
            key="attn_implementation",
        )
    if name == "flex_attention" and not torch.cuda.is_available():
        # torch runs flex attention's forward on CPU but has no backward there.
        raise ConfigError(
            "attn_implementation: flex_attention cannot train on CPU (torch has no CPU backward for it); use sdpa",
            key="attn_implementation",
        )


def check_quantization(bits: int, finetuning_type: str) -> None:
    """bitsandbytes quantization trains LoRA adapters on a frozen model, on CUDA only: said before any data
    is read."""
    import importlib.util

    import torch

    if finetuning_type != "lora":
        raise ConfigError(
            f"quantization_bit: {bits} trains LoRA adapters on a frozen quantized model: set finetuning_type: lora",
            key="quantization_bit",
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            f"quantization_bit: {bits} (QLoRA, bitsandbytes) needs a CUDA GPU and this machine has none; remove "
            "the key to train LoRA in full precision",
            key="quantization_bit",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            f"quantization_bit: {bits} needs bitsandbytes: pip install bitsandbytes",
            key="quantization_bit",
        )


@dataclass
class DataArgs:
    train_file: str | list[str] = field(
        metadata={
            "help": "Training data: any file and layout mg-data reads, or an entry of an LLaMA-Factory "
            "dataset_info.json (dataset: with dataset_dir); a list is read in order, one after the other."
        }
    )
    eval_file: str | list[str] | None = field(
        default=None, metadata={"help": "Held-out data for evaluation during training (a list: in order)."}
    )
    val_size: float = field(
        default=0.0,
        metadata={
            "help": "Without eval_file: hold out this fraction of the training rows (or, an integer, this many), "
            "picked at random with the seed as LLaMA-Factory does."
        },
    )
    max_samples: int | None = field(
        default=None,
        metadata={"help": "Read at most this many rows of each training and eval source (LLaMA-Factory's)."},
    )
    preview_samples: int = field(
        default=3, metadata={"help": "Samples printed (as the model sees them) before step 1."}
    )
    template: str | None = field(
        default=None,
        metadata={
            "help": "Generative: the chat template for a tokenizer without one (chatml, qwen, qwen3, llama3, ...; "
            "LLaMA-Factory's names). A tokenizer's own template is always used."
        },
    )

    def __post_init__(self):
        check_fields(self, LIMITS)
        if self.val_size and self.eval_file:
            raise ConfigError(
                "val_size holds out training rows for evaluation, but eval data is given too (eval_file, "
                "eval_dataset): keep one",
                key="val_size",
            )

    @property
    def train_sources(self) -> list[str]:
        return sources(self.train_file)

    @property
    def eval_sources(self) -> list[str]:
        return sources(self.eval_file)


def sources(value: str | list[str] | None) -> list[str]:
    """A train_file / eval_file value as the list of sources it names."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@dataclass
class TrainJob:
    task: str
    model: ModelArgs
    data: DataArgs
    train: Any  # the task's Config (a transformers.TrainingArguments subclass)
    raw: dict  # the resolved mapping, written to the run log
    notes: list[str] = field(default_factory=list)  # one line each, printed before the data preview


def check_model_folder(path: str | None) -> None:
    """A folder given as the model must hold one: HF would otherwise fail deep inside loading, after the
    data was read. A name that is not a folder here is left to the HF cache/hub."""
    if not path or not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise ConfigError(
            f"model_name_or_path {path} is a file, not a model folder", key="model_name_or_path"
        )
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ConfigError(
            f"model_name_or_path {path} holds no model (no config.json)", key="model_name_or_path"
        )


def check_training_args(args) -> None:
    """The checks of a task Config (a TrainingArguments subclass), before TrainingArguments' own."""
    check_fields(args, {**LIMITS, **getattr(type(args), "limits", {})})
    if args.max_steps is not None and args.max_steps != -1 and args.max_steps <= 0:
        raise ConfigError(
            f"max_steps must be > 0 (or -1: train num_train_epochs), not {shown(args.max_steps)}",
            key="max_steps",
        )
    if (args.max_steps is None or args.max_steps <= 0) and args.num_train_epochs <= 0:
        raise ConfigError(
            f"num_train_epochs must be > 0 (or give max_steps), not {shown(args.num_train_epochs)}",
            key="num_train_epochs",
        )


def check_fields(obj, limits: dict[str, Limit]) -> None:
    """Each init field of the dataclass `obj`: its type (from the hint), then its range."""
    hints = type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        value = getattr(obj, f.name)
        if value is None and f.default is None:
            continue  # unset
        if not matches(value, hints[f.name]):
            raise ConfigError(f"{f.name} must be {describe(hints[f.name])}, not {shown(value)}", key=f.name)
        limit = limits.get(f.name)
        if limit and value is not None and not limit.test(value):
            raise ConfigError(f"{f.name} must be {limit.says}, not {shown(value)}", key=f.name)


def type_hints(cls: type) -> dict[str, Any]:
    return _type_hints(cls)


@functools.cache
def _type_hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def matches(value: Any, hint: Any) -> bool:
    """Whether a config value fits a field's type hint (int is a float; bool is neither)."""
    if not isinstance(value, YAML_TYPES):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (list, tuple, set):
        return isinstance(value, list | tuple) and (not args or all(matches(v, args[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in [m.value for m in hint]
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


NAMES = {bool: "bool", int: "int", float: "float", str: "str", dict: "mapping", type(None): "null"}
ARTICLES = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "mapping": "a mapping",
    "null": "null",
}


def type_name(hint: Any) -> str:
    """A field's type as `mg-train --help` shows it: int, float | null, list[int], no | steps | epoch."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if not _is_enum(a)]
        choices = [type_name(a) for a in args if _is_enum(a)]
        # `IntervalStrategy | str`: the enum's values say more than "str"
        if choices and "str" in names:
            names.remove("str")
        return " | ".join(dict.fromkeys(choices + names))
    if origin is Literal:
        return " | ".join(json.dumps(a) if not isinstance(a, str) else a for a in args)
    if origin in (list, tuple, set):
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin is dict:
        return "mapping"
    if _is_enum(hint):
        return " | ".join(str(m.value) for m in hint)
    if hint in NAMES:
        return NAMES[hint]
    return getattr(hint, "__name__", str(hint))


def describe(hint: Any) -> str:
    """The type in an error message: "an integer", "a list of int or null"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if any(_is_enum(a) for a in args):  # `IntervalStrategy | str`: the enum's values say more
            args = tuple(a for a in args if a is not str)
        return " or ".join(dict.fromkeys(describe(a) for a in args))
    if origin in (list, tuple, set):
        return f"a list of {type_name(args[0])}" if args else "a list"
    if origin is Literal or _is_enum(hint):
        return f"one of {type_name(hint).replace(' | ', ', ')}"
    name = type_name(hint)
    return ARTICLES.get(name, name)


def _is_enum(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, enum.Enum)


def shown(value: Any) -> str:
    """A value as the user wrote it in YAML: true, null, [8], 'fast'."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
