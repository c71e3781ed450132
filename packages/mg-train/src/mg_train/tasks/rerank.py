"""rerank: a cross-encoder over (query, document) pairs. Listwise cross-entropy over groups of one
positive and group_size - 1 negatives, or pointwise BCE on the same pairs.

Rows with fewer negatives than the group needs reuse theirs in turn (documented); mg-data already
rejects a rerank row with no negative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mg_eval.backends.local import LocalModel
from mg_train.args import at_least, one_of
from mg_train.tasks.base import TaskConfig, tokenize


@dataclass
class Config(TaskConfig):
    group_size: int = field(
        default=8, metadata={"help": "Documents per query in a step: 1 positive + the rest negatives."}
    )
    rerank_loss: str = field(
        default="listwise", metadata={"help": "listwise (softmax CE over the group) or pointwise (BCE)."}
    )

    metric_default = "ndcg@10"
    greater_default = True
    limits = {"group_size": at_least(2), "rerank_loss": one_of("listwise", "pointwise")}


@dataclass
class TaskData:
    pass


def prepare(job, train, eval_) -> TaskData:
    return TaskData()  # group_size and rerank_loss are checked where the config is built (Config.limits)


def build_model(job, data, tokenizer):
    from mg_heads.classification import load_sequence_classifier

    return load_sequence_classifier(job.model.model_name_or_path, num_labels=1, problem_type=None)


def collate(tokenizer, job, data):
    group = job.train.group_size

    def batch(examples):
        queries, docs = [], []
        for ex in examples:
            negs = ex["negatives"]
            chosen = [negs[i % len(negs)] for i in range(group - 1)]
            queries += [ex["query"]] * group
            docs += [ex["positives"][0], *chosen]
        out = dict(tokenize(tokenizer, queries, docs, max_length=job.model.max_length, seq_cls=True))
        out["group_size"] = torch.tensor(group)
        return out

    return batch


def loss(model, batch, config):
    from mg_heads.losses.listwise_ce import listwise_ce
    from mg_heads.losses.pointwise_bce import pointwise_bce

    group = int(batch.pop("group_size"))
    scores = model(**batch).logits.view(-1, group)
    if config.rerank_loss == "listwise":
        return listwise_ce(scores)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return pointwise_bce(scores, labels)


def backend(model, tokenizer, job, data):
    return LocalModel(
        model,
        tokenizer,
        batch_size=job.train.per_device_eval_batch_size,
        max_length=job.model.max_length,
    )


def export(model, tokenizer, out_dir, job, data, training: dict):
    from mg_heads.export import export as write

    return write(model, tokenizer, out_dir, task="rerank", max_length=job.model.max_length, training=training)
