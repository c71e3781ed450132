"""score: pair regression with a cross-encoder (num_labels=1, problem_type regression): CoSENT (the
ranking of pair scores follows the ranking of labels) or MSE on the similarity label."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mg_eval.backends.local import LocalModel
from mg_train.args import one_of
from mg_train.tasks.base import TaskConfig, tokenize


@dataclass
class Config(TaskConfig):
    score_loss: str = field(default="cosent", metadata={"help": "cosent or mse."})

    metric_default = "spearman"
    greater_default = True
    limits = {"score_loss": one_of("cosent", "mse")}


@dataclass
class TaskData:
    pass


def prepare(job, train, eval_) -> TaskData:
    return TaskData()  # score_loss is checked where the config is built (Config.limits)


def build_model(job, data, tokenizer):
    from mg_heads.classification import load_sequence_classifier

    return load_sequence_classifier(job.model.model_name_or_path, num_labels=1, problem_type="regression")


def collate(tokenizer, job, data):
    def batch(examples):
        out = dict(
            tokenize(
                tokenizer,
                [ex["text_1"] for ex in examples],
                [ex["text_2"] for ex in examples],
                max_length=job.model.max_length,
                seq_cls=True,
            )
        )
        out["labels"] = torch.tensor([ex["label"] for ex in examples], dtype=torch.float)
        return out

    return batch


def loss(model, batch, config):
    from mg_heads.losses.cosent import cosent
    from mg_heads.losses.mse import mse

    labels = batch.pop("labels")
    pred = model(**batch).logits.squeeze(-1)
    return cosent(pred, labels) if config.score_loss == "cosent" else mse(pred, labels)


def backend(model, tokenizer, job, data):
    return LocalModel(
        model,
        tokenizer,
        batch_size=job.train.per_device_eval_batch_size,
        max_length=job.model.max_length,
    )


def export(model, tokenizer, out_dir, job, data, training: dict):
    from mg_heads.export import export as write

    return write(model, tokenizer, out_dir, task="score", max_length=job.model.max_length, training=training)
