"""rm (reward model): Bradley–Terry pairwise loss on chosen/rejected; one scalar per sequence.

The model is a sequence classifier with num_labels=1 and problem_type regression, which vLLM serves as
classify with the raw score (vllm-compat.md). Prompt and answer are joined as TRL's reward trainer does:
strings concatenated, message lists rendered by the chat template.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mg_eval.backends.local import LocalModel
from mg_train.tasks.base import TaskConfig, render, tokenize


@dataclass
class Config(TaskConfig):
    margin: float = field(
        default=0.0, metadata={"help": "Bradley–Terry margin: chosen must beat rejected by this."}
    )

    metric_default = "pairwise_accuracy"
    greater_default = True


@dataclass
class TaskData:
    pass


def prepare(job, train, eval_) -> TaskData:
    return TaskData()


def build_model(job, data, tokenizer):
    from mg_heads.classification import load_sequence_classifier

    return load_sequence_classifier(job.model.model_name_or_path, num_labels=1, problem_type="regression")


def collate(tokenizer, job, data):
    def batch(examples):
        chosen = [render(tokenizer, ex["prompt"] + ex["chosen"]) for ex in examples]
        rejected = [render(tokenizer, ex["prompt"] + ex["rejected"]) for ex in examples]
        # One forward over both halves: padding is shared, the first half is chosen.
        return dict(tokenize(tokenizer, chosen + rejected, max_length=job.model.max_length, seq_cls=True))

    return batch


def loss(model, batch, config):
    from mg_heads.losses.bradley_terry import bradley_terry

    rewards = model(**batch).logits.squeeze(-1)
    chosen, rejected = rewards.chunk(2)
    return bradley_terry(
        chosen, rejected, margin=torch.full_like(chosen, config.margin) if config.margin else None
    )


def backend(model, tokenizer, job, data):
    return LocalModel(
        model,
        tokenizer,
        batch_size=job.train.per_device_eval_batch_size,
        max_length=job.model.max_length,
    )


def export(model, tokenizer, out_dir, job, data, training: dict):
    from mg_heads.export import export as write

    return write(model, tokenizer, out_dir, task="rm", max_length=job.model.max_length, training=training)
