"""dpo: preference optimization on chosen/rejected pairs (DPO, IPO and TRL's other pairwise losses; SimPO, ORPO).

Rows are mg-data's {prompt, chosen, rejected} (strings, or message lists that TRL renders with the tokenizer's chat
template). `loss_type` takes TRL's DPO loss names (one, or a list combined with `loss_weights`); `simpo` and
`orpo` (LLaMA-Factory's pref_loss values) are reference-free methods TRL keeps in other trainers, and are routed
to them here: simpo to trl.experimental.cpo's CPOTrainer (loss_type simpo), orpo to trl.experimental.orpo.
With LoRA the reference model is the base model (TRL evaluates it through a frozen copy of the fresh adapter).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import trl

from mg_train.errors import ConfigError
from mg_train.guards import Guards
from mg_train.tasks.generative import GenerativeConfig, build_causal_lm, prepare_tokenizer, segments
from mg_train.tasks.generative import export as export_causal_lm

__all__ = ["Config", "build_model", "export", "prepare", "prepare_tokenizer", "preview", "trainer"]

# TRL 1.16's DPOTrainer losses (DPOConfig.loss_type); `sft` is the NLL of the chosen answer.
DPO_LOSSES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)
# Losses of other TRL trainers, taken by task dpo as LLaMA-Factory's pref_loss does.
ROUTED = ("simpo", "orpo")


@dataclass
class Config(GenerativeConfig, trl.DPOConfig):  # type: ignore[misc]  # use_liger_kernel: bool | None (auto) over TRL\'s bool
    # TaskConfig comes before DPOConfig in the MRO and carries TrainingArguments' 5e-5: TRL's DPO default is kept
    # (a preference step on a model that already answers well wants a small rate).
    learning_rate: float = field(default=1e-6, metadata={"help": "The initial learning rate for AdamW."})
    remove_unused_columns: bool = field(
        default=True, metadata={"help": "Drop the dataset columns TRL's collator does not read."}
    )
    loss_type: str | list[str] = field(  # type: ignore[assignment]
        default_factory=lambda: ["sigmoid"],
        metadata={
            "help": "The preference loss: one of " + ", ".join(DPO_LOSSES) + " (TRL's DPO losses; a list is "
            "combined with loss_weights), or simpo (TRL's CPOTrainer) or orpo (TRL's ORPOTrainer), both "
            "reference-free. LLaMA-Factory's pref_loss."
        },
    )
    simpo_gamma: float = field(
        default=0.5, metadata={"help": "simpo: the target reward margin (gamma of the SimPO paper)."}
    )
    pref_ftx: float = field(
        default=0.0,
        metadata={
            "help": "Weight of an SFT loss (NLL of the chosen answer) added to the preference loss (LLaMA-Factory's "
            "name): TRL's `sft` loss type with this weight; for simpo, CPO's cpo_alpha. 0: none."
        },
    )
    # One length for every generative method: ModelArgs.max_length (cutoff_len), copied here by `trainer`.
    max_length: int | None = field(default=None, init=False)
    trust_remote_code: bool = field(default=False, init=False)  # ModelArgs has it (and refuses true)

    def __post_init__(self):
        self.loss_type = check_loss_type(self.loss_type)
        if self.pref_ftx < 0:
            raise ConfigError(f"pref_ftx must be >= 0, not {self.pref_ftx:g}", key="pref_ftx")
        method = routed(self.loss_type)
        if method == "orpo" and self.pref_ftx:
            raise ConfigError(
                "pref_ftx: orpo's loss already holds the SFT (NLL) term; remove pref_ftx", key="pref_ftx"
            )
        if method is None and self.pref_ftx:
            weights = list(self.loss_weights or [1.0] * len(self.loss_type))
            self.loss_type, self.loss_weights = [*self.loss_type, "sft"], [*weights, self.pref_ftx]
        super().__post_init__()


def check_loss_type(value: str | list[str]) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ConfigError("loss_type is empty; the default is sigmoid", key="loss_type")
    for name in names:
        if name not in DPO_LOSSES + ROUTED:
            hint = " (kto_pair is now its own task: task: kto)" if name == "kto_pair" else ""
            raise ConfigError(
                f"loss_type {name!r} is not one of {', '.join(DPO_LOSSES + ROUTED)}{hint}", key="loss_type"
            )
    if len(names) > 1 and any(n in ROUTED for n in names):
        raise ConfigError(
            f"loss_type {names}: simpo and orpo are whole methods (their own TRL trainers) and are not combined "
            "with other losses; use one of them alone",
            key="loss_type",
        )
    return names


def routed(loss_type: list[str]) -> str | None:
    """simpo or orpo when the loss is one of the methods TRL keeps in another trainer."""
    return loss_type[0] if loss_type[0] in ROUTED else None


@dataclass
class TaskData:
    pass


def prepare(job, train, eval_) -> TaskData:
    return TaskData()


def build_model(job, data, tokenizer):
    return build_causal_lm(job)


# --- the data, as TRL reads it ------------------------------------------------------------------------------


def to_dataset(rows: list[dict], where: str, *, json_columns: tuple[str, ...] = ("tools",)):
    """mg-data's normalized rows as a datasets.Dataset: every column any row has (None where a row has none);
    `json_columns` as JSON text, which TRL decodes for tools (schemas of different shapes fit no one Arrow type)."""
    import pyarrow as pa
    from datasets import Dataset

    columns: dict[str, list] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, [])
    for key, values in columns.items():
        for row in rows:
            value = row.get(key)
            values.append(
                json.dumps(value, ensure_ascii=False) if key in json_columns and value is not None else value
            )
    try:
        return Dataset.from_dict(columns)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ConfigError(
            f"{where}: the rows do not share one layout (e.g. a prompt that is text in one row and messages in "
            f"another, or a column of mixed types): {str(e).splitlines()[0]}"
        ) from None


def encode_answer(tokenizer, example: dict, answer_key: str, max_length: int | None) -> tuple[list, list]:
    """(input_ids, labels) of prompt + answer as TRL 1.16 tokenizes them: the chat template for messages (the
    prompt with the generation prompt; the answer starts where the two renderings part), plain text + eos
    otherwise; the prompt untrained, the whole truncated to max_length."""
    prompt, answer = example["prompt"], example[answer_key]
    if isinstance(answer, list):
        tools = example.get("tools")
        tools = json.loads(tools) if isinstance(tools, str) else tools

        def render(messages, **kw):
            out = tokenizer.apply_chat_template(messages, tools=tools, tokenize=True, return_dict=True, **kw)
            return list(out["input_ids"])

        prompt_ids = render(prompt, add_generation_prompt=True) if prompt else []
        full = render(prompt + answer)
    else:
        eos = tokenizer.eos_token or ""
        prompt_ids = tokenizer(prompt)["input_ids"]
        full = tokenizer(prompt + answer + ("" if answer.endswith(eos) else eos))["input_ids"]
    n = 0
    while n < min(len(prompt_ids), len(full)) and prompt_ids[n] == full[n]:
        n += 1
    labels = [-100] * n + full[n:]
    if max_length is not None:
        full, labels = full[:max_length], labels[:max_length]
    return full, labels


def preview(job, data, tokenizer, examples: list[dict]) -> list[dict]:
    out = []
    for ex in examples:
        for key in ("chosen", "rejected"):
            ids, labels = encode_answer(tokenizer, ex, key, job.model.max_length)
            trained = sum(1 for x in labels if x != -100)
            out.append(
                {
                    "segments": segments(tokenizer, ids, labels),
                    "label": f"{key}: {trained} of {len(ids)} tokens trained (the answer)",
                }
            )
    return out


# --- the trainer --------------------------------------------------------------------------------------------


class DPOTrainer(Guards, trl.DPOTrainer):
    pass


def trainer(job, data, *, model, tokenizer, train, eval_, callbacks, log):
    args = job.train
    args.max_length = job.model.max_length
    method = routed(args.loss_type)
    if method == "simpo":
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        cls: type = type("SimPOTrainer", (Guards, CPOTrainer), {})
        args = convert(
            args,
            CPOConfig,
            loss_type="simpo",
            simpo_gamma=args.simpo_gamma,
            cpo_alpha=args.pref_ftx,  # CPO = SimPO + cpo_alpha x NLL; pure SimPO without pref_ftx
            beta=args.beta,
            label_smoothing=args.label_smoothing,
            disable_dropout=args.disable_dropout,
            max_length=args.max_length,
            remove_unused_columns=False,  # CPO's collator reads the tokenized columns it adds itself
        )
    elif method == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        cls = type("ORPOTrainer", (Guards, ORPOTrainer), {})
        args = convert(
            args,
            ORPOConfig,
            beta=args.beta,
            disable_dropout=args.disable_dropout,
            max_length=args.max_length,
            remove_unused_columns=False,
        )
    else:
        cls = DPOTrainer
    return build_trainer(
        cls,
        job,
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=to_dataset(train, job.data.train_file),
        eval_dataset=to_dataset(eval_, job.data.eval_file or job.data.train_file) if eval_ else None,
        callbacks=callbacks,
    )


def convert(args, cls, **fields):
    """`args` (our Config) as TRL's `cls` config: every TrainingArguments value as set, plus `fields`."""
    from transformers import TrainingArguments

    values: dict[str, Any] = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingArguments) if f.init
    }
    values["report_to"] = args.report_to or "none"
    return cls(**{**values, **fields})


def build_trainer(cls, job, **kwargs):
    """The TRL trainer; its refusals of the configuration (ValueError in __init__) as one line naming the task."""
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ConfigError(f"task {job.task}: {str(e).strip()}") from None


def export(model, tokenizer, out_dir, job, data, training: dict):
    """The causal LM export, without the frozen reference adapter TRL adds beside a LoRA adapter ("ref")."""
    drop_reference_adapter(model)
    return export_causal_lm(model, tokenizer, out_dir, job, data, training)


def drop_reference_adapter(model) -> None:
    config = getattr(model, "peft_config", None)
    if isinstance(config, dict) and "ref" in config:
        model.delete_adapter("ref")
