"""classify: single-label (cross-entropy), multi-label (BCE) or regression (MSE) on text or text pairs.

Labels come from the data: class names (or ids), sorted so the
id2label mapping is stable across runs; a label in eval data that training never saw is an error before
the model loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mg_eval.backends.local import LocalModel
from mg_train.args import fraction, one_of
from mg_train.errors import ConfigError
from mg_train.tasks.base import TaskConfig, tokenize

PROBLEM_TYPES = {
    "single_label": "single_label_classification",
    "multi_label": "multi_label_classification",
    "regression": "regression",
}


@dataclass
class Config(TaskConfig):
    problem_type: str = field(
        default="auto", metadata={"help": "auto, single_label, multi_label or regression."}
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "Cross-entropy label smoothing (single-label)."}
    )

    metric_default = "f1_macro"
    greater_default = True
    limits = {"problem_type": one_of("auto", *PROBLEM_TYPES), "label_smoothing": fraction()}


@dataclass
class TaskData:
    problem_type: str
    labels: list  # class names in id order (empty for regression)

    @property
    def id2label(self) -> dict[int, str]:
        return {i: str(n) for i, n in enumerate(self.labels)}


def prepare(job, train: list[dict], eval_: list[dict]) -> TaskData:
    kinds = {_kind(ex["label"]) for ex in train}
    if len(kinds) > 1:
        raise ConfigError(f"{job.data.train_file}: labels mix {', '.join(sorted(kinds))}; use one kind")
    kind = kinds.pop()
    if job.train.problem_type != "auto":  # one of PROBLEM_TYPES: checked where the config is built
        kind = job.train.problem_type
    if kind == "regression":
        return TaskData("regression", [])
    names = sorted(
        {label for ex in train for label in _as_list(ex["label"])}, key=lambda x: (str(type(x)), x)
    )
    seen = set(names)
    for i, ex in enumerate(eval_):
        unseen = [label for label in _as_list(ex["label"]) if label not in seen]
        if unseen:
            raise ConfigError(
                f"{job.data.eval_file or job.data.train_file}: eval example {i + 1} has label "
                f"{unseen[0]!r}, which training data never has; known labels: {', '.join(map(str, names))}"
            )
    if kind == "single_label" and len(names) < 2:
        raise ConfigError(f"{job.data.train_file}: only one class ({names[0]!r}) in training data")
    return TaskData(PROBLEM_TYPES[kind], names)


def _kind(label) -> str:
    if isinstance(label, list):
        return "multi_label"
    return "regression" if isinstance(label, float) else "single_label"


def _as_list(label):
    return label if isinstance(label, list) else [label]


def build_model(job, data: TaskData, tokenizer):
    from mg_heads.classification import load_sequence_classifier

    num_labels = 1 if data.problem_type == "regression" else len(data.labels)
    return load_sequence_classifier(
        job.model.model_name_or_path,
        num_labels=num_labels,
        problem_type=data.problem_type,
        id2label=data.id2label or None,
    )


def collate(tokenizer, job, data: TaskData):
    index = {n: i for i, n in enumerate(data.labels)}

    def batch(examples):
        pairs = [ex["text_pair"] for ex in examples] if "text_pair" in examples[0] else None
        enc = dict(
            tokenize(
                tokenizer,
                [ex["text"] for ex in examples],
                pairs,
                max_length=job.model.max_length,
                seq_cls=True,
            )
        )
        if data.problem_type == "regression":
            enc["labels"] = torch.tensor([float(ex["label"]) for ex in examples])
        elif data.problem_type == "multi_label_classification":
            hot = torch.zeros(len(examples), len(data.labels))
            for r, ex in enumerate(examples):
                for label in ex["label"]:
                    hot[r, index[label]] = 1.0
            enc["labels"] = hot
        else:
            enc["labels"] = torch.tensor([index[ex["label"]] for ex in examples])
        return enc

    return batch


def loss(model, batch, config):
    from mg_heads.losses.cross_entropy import cross_entropy
    from mg_heads.losses.mse import mse
    from mg_heads.losses.multilabel_bce import multilabel_bce

    labels = batch.pop("labels")
    logits = model(**batch).logits
    # The collator's label tensor says the problem type; the model may be wrapped (DDP, DeepSpeed) and
    # have no `.config` to ask.
    if labels.dtype.is_floating_point and labels.dim() == 1:
        return mse(logits.squeeze(-1), labels)
    if labels.dtype.is_floating_point:
        return multilabel_bce(logits, labels)
    return cross_entropy(logits, labels, label_smoothing=config.label_smoothing)


def backend(model, tokenizer, job, data: TaskData):
    return LocalModel(
        model,
        tokenizer,
        batch_size=job.train.per_device_eval_batch_size,
        max_length=job.model.max_length,
    )


def export(model, tokenizer, out_dir, job, data: TaskData, training: dict):
    from mg_heads.export import export as write

    return write(
        model,
        tokenizer,
        out_dir,
        task="classify",
        max_length=job.model.max_length,
        labels=[str(n) for n in data.labels] or None,
        training=training,
    )
