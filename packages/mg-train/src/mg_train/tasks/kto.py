"""kto: preference optimization on single answers marked desirable or not (KTO, TRL's KTOTrainer).

Rows are mg-data's {prompt, completion, label: bool} (strings, or message lists rendered with the tokenizer's
chat template). The loss estimates its KL term from mismatched prompt/completion pairs within a batch, so
per_device_train_batch_size must be > 1 and the batches are read in order (train_sampling_strategy sequential).
With LoRA the reference model is the base model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trl

from mg_train.errors import ConfigError
from mg_train.guards import Guards
from mg_train.tasks.dpo import TaskData, build_trainer, encode_answer, export, to_dataset
from mg_train.tasks.generative import GenerativeConfig, build_causal_lm, prepare_tokenizer, segments

__all__ = ["Config", "build_model", "export", "prepare", "prepare_tokenizer", "preview", "trainer"]


@dataclass
class Config(GenerativeConfig, trl.KTOConfig):  # type: ignore[misc]  # use_liger_kernel: bool | None (auto) over TRL\'s bool
    # TRL's KTO defaults that TaskConfig (before KTOConfig in the MRO) would otherwise replace by TrainingArguments'.
    learning_rate: float = field(default=1e-6, metadata={"help": "The initial learning rate for AdamW."})
    train_sampling_strategy: str = field(
        default="sequential",
        metadata={
            "help": "Order of the training rows: the KL term pairs each row with its batch neighbours, so the "
            "kto loss needs sequential (random only with loss_type apo_zero_unpaired)."
        },
    )
    remove_unused_columns: bool = field(
        default=True, metadata={"help": "Drop the dataset columns TRL's collator does not read."}
    )

    def __post_init__(self):
        # TRL says only "Actual (not effective) batch size must be > 1" once the model has loaded; LLaMA-Factory's
        # own kto example uses 1 (its trainer builds the KL pairs from a second dataset instead).
        if self.per_device_train_batch_size < 2 and self.loss_type != "apo_zero_unpaired":
            raise ConfigError(
                f"per_device_train_batch_size {self.per_device_train_batch_size}: kto estimates its KL term from "
                "the other rows of a batch, so it needs 2 or more (raise it, and lower "
                "gradient_accumulation_steps to keep the effective batch)",
                key="per_device_train_batch_size",
            )
        super().__post_init__()

    # One length for every generative method: ModelArgs.max_length (cutoff_len), copied here by `trainer`.
    max_length: int | None = field(default=None, init=False)
    trust_remote_code: bool = field(default=False, init=False)  # ModelArgs has it (and refuses true)


def prepare(job, train, eval_) -> TaskData:
    return TaskData()


def build_model(job, data, tokenizer):
    return build_causal_lm(job)


def preview(job, data, tokenizer, examples: list[dict]) -> list[dict]:
    out = []
    for ex in examples:
        ids, labels = encode_answer(tokenizer, ex, "completion", job.model.max_length)
        trained = sum(1 for x in labels if x != -100)
        kind = "desirable" if ex["label"] else "undesirable"
        out.append(
            {
                "segments": segments(tokenizer, ids, labels),
                "label": f"{kind}: {trained} of {len(ids)} tokens trained (the completion)",
            }
        )
    return out


class KTOTrainer(Guards, trl.KTOTrainer):
    pass


def trainer(job, data, *, model, tokenizer, train, eval_, callbacks, log):
    job.train.max_length = job.model.max_length
    return build_trainer(
        KTOTrainer,
        job,
        model=model,
        args=job.train,
        processing_class=tokenizer,
        train_dataset=to_dataset(train, job.data.train_file),
        eval_dataset=to_dataset(eval_, job.data.eval_file or job.data.train_file) if eval_ else None,
        callbacks=callbacks,
    )
