"""embed: InfoNCE over in-batch negatives plus each row's hard negatives, with temperature; optional
gather of candidates across processes and Matryoshka dimensions. Pooling cls/mean/last, normalize on/off.

A row without hard negatives still trains on in-batch negatives (the other rows' positives and hard
negatives): documented behaviour, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mg_eval.backends.local import LocalModel
from mg_train.args import at_least, each, positive
from mg_train.errors import ConfigError
from mg_train.tasks.base import TaskConfig


@dataclass
class Config(TaskConfig):
    # Batches of similar length (trainer.SimilarLengthBatches): embedding pairs mix short queries and long
    # passages, and random batches spend a third of their positions on padding.
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={
            "help": "random, sequential or group_by_length (default for embed: batches of similar length, "
            "each drawn from a random group of 4 batches, so in-batch negatives stay varied)."
        },
    )
    temperature: float = field(
        default=0.05, metadata={"help": "InfoNCE temperature (sentence-transformers' scale 20 = 0.05)."}
    )
    num_hard_negatives: int = field(
        default=1, metadata={"help": "Hard negatives used per row (fewer if a row has fewer)."}
    )
    gather_negatives: bool = field(
        default=False, metadata={"help": "Use every process's candidates as negatives."}
    )
    matryoshka_dims: list[int] | None = field(
        default=None, metadata={"help": "Also train truncated embeddings, e.g. [256, 128, 64]."}
    )

    metric_default = "ndcg@10"
    greater_default = True
    limits = {
        "temperature": positive(),
        "num_hard_negatives": at_least(0),
        "matryoshka_dims": each(positive()),
    }


@dataclass
class TaskData:
    pooling: str


def prepare(job, train, eval_) -> TaskData:
    if job.train.gather_negatives and job.train.num_hard_negatives:
        # Gathering needs the same tensor shapes on every process: every row brings exactly N negatives.
        bare = next((i for i, ex in enumerate(train) if not ex["negatives"]), None)
        if bare is not None:
            raise ConfigError(
                f"{job.data.train_file}: example {bare + 1} has no hard negatives, but gather_negatives "
                "needs the same number in every row; add negatives or set num_hard_negatives: 0"
            )
        job.train.dataloader_drop_last = True
    return TaskData(pooling=job.model.pooling)


def build_model(job, data: TaskData, tokenizer):
    from mg_heads.embedding import EmbeddingModel

    model = EmbeddingModel.from_pretrained(
        job.model.model_name_or_path, pooling=job.model.pooling, normalize=job.model.normalize
    )
    data.pooling = model.pooling
    return model


def collate(tokenizer, job, data: TaskData):
    from mg_heads.length_groups import encode_length_groups

    n_neg = job.train.num_hard_negatives

    def batch(examples):
        queries = [ex["query"] for ex in examples]
        positives = [ex["positives"][0] for ex in examples]
        if job.train.gather_negatives:  # exactly n_neg per row (cycled), so every process has equal shapes
            negatives = [ex["negatives"][i % len(ex["negatives"])] for ex in examples for i in range(n_neg)]
        else:  # up to n_neg per row; a row without any still has the in-batch negatives
            negatives = [neg for ex in examples for neg in ex["negatives"][:n_neg]]
        # Each column is encoded in chunks of similar length (mg_heads.length_groups): the batch, and so
        # its in-batch negatives, stays the same, but little compute goes to padding.
        out = {
            "query": encode_length_groups(tokenizer, queries, max_length=job.model.max_length),
            "positive": encode_length_groups(tokenizer, positives, max_length=job.model.max_length),
        }
        if negatives:
            out["negative"] = encode_length_groups(tokenizer, negatives, max_length=job.model.max_length)
        return out

    return batch


def loss(model, batch, config):
    from mg_heads.length_groups import encode_groups
    from mg_heads.losses.info_nce import info_nce
    from mg_heads.losses.matryoshka import matryoshka

    q = encode_groups(model, batch["query"])
    p = encode_groups(model, batch["positive"])
    n = encode_groups(model, batch["negative"]) if "negative" in batch else None

    def objective(q, p, n):
        return info_nce(
            q, p, n, temperature=config.temperature, gather_across_processes=config.gather_negatives
        )

    if config.matryoshka_dims:
        return matryoshka(objective, config.matryoshka_dims, q, p, n)
    return objective(q, p, n)


def backend(model, tokenizer, job, data):
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
        task="embed",
        max_length=job.model.max_length,
        pooling=data.pooling,
        normalize=job.model.normalize,
        training=training,
        matryoshka_dims=job.train.matryoshka_dims,
    )
