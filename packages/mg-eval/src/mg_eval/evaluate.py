"""Task evaluators: normalized examples (from mg-data) + a backend -> the task's metrics.

The same function scores a local folder and a served model: only the backend differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mg_data.tasks import POOLING_TASKS, Task
from mg_eval import metrics

# The tasks mg-eval scores (names from mg_data.tasks, the one task vocabulary).
TASKS: tuple[Task, ...] = ("sft", *POOLING_TASKS)


@dataclass
class Result:
    task: str
    metrics: dict[str, float]
    predictions: list[dict] = field(default_factory=list)  # one per example, for --predictions


def evaluate(task: str, backend, examples: list[dict], *, max_new_tokens: int = 64, ks=(1, 5, 10)) -> Result:
    if not examples:
        raise ValueError("no examples to evaluate")
    evaluators: dict[str, Callable[..., Result]] = {
        "sft": _sft,
        "classify": _classify,
        "rm": _rm,
        "embed": _embed,
        "rerank": _rerank,
        "score": _score,
    }
    return evaluators[task](backend, examples, max_new_tokens=max_new_tokens, ks=ks)


def _sft(backend, examples, *, max_new_tokens, **_) -> Result:
    prompts = [ex["messages"][:-1] for ex in examples]
    references = [ex["messages"][-1]["content"] for ex in examples]
    predictions = backend.generate(prompts, max_new_tokens=max_new_tokens)
    result = metrics.generation_metrics(predictions, references)
    if hasattr(backend, "response_loss"):  # a served model exposes no loss, a local one does
        loss = backend.response_loss([ex["messages"] for ex in examples])
        result.update(loss=loss, perplexity=metrics.perplexity(loss))
    rows = [{"prediction": p, "reference": r} for p, r in zip(predictions, references, strict=True)]
    return Result("sft", result, rows)


def _classify_input(ex: dict):
    return (ex["text"], ex["text_pair"]) if "text_pair" in ex else ex["text"]


def _classify(backend, examples, **_) -> Result:
    outputs = backend.classify([_classify_input(ex) for ex in examples])
    truth = [ex["label"] for ex in examples]
    rows = [
        {"label": t, "prediction": o["label"], "probs": o["probs"]}
        for t, o in zip(truth, outputs, strict=True)
    ]
    if all(isinstance(t, float) for t in truth):  # regression
        return Result("classify", metrics.regression_metrics(truth, [o["probs"][0] for o in outputs]), rows)
    if all(isinstance(t, list) for t in truth):  # multi-label: one probability per class, 0.5 threshold
        names = _label_names(backend, len(outputs[0]["probs"]))
        index = {n: i for i, n in enumerate(names)}
        y_true = np.zeros((len(truth), len(names)), dtype=int)
        for r, labels in enumerate(truth):
            for label in labels:
                y_true[r, label if isinstance(label, int) else index[label]] = 1
        y_pred = (np.array([o["probs"] for o in outputs]) > 0.5).astype(int)
        return Result("classify", metrics.multilabel_metrics(y_true, y_pred), rows)
    ids = [int(np.argmax(o["probs"])) for o in outputs]
    positive: int | None  # the index of the positive class (the larger label) in probs
    if all(isinstance(t, int) for t in truth):
        pred, positive = ids, 1
    else:
        pred = [o["label"] for o in outputs]
        id2label = getattr(backend, "id2label", None)
        labels = sorted(set(truth) | set(pred))
        positive = {n: i for i, n in (id2label or {}).items()}.get(labels[-1]) if id2label else None
    scores = None
    if len(outputs[0]["probs"]) == 2 and positive is not None and len(set(truth)) == 2:
        scores = [o["probs"][positive] for o in outputs]
    for row, p in zip(rows, pred, strict=True):
        row["prediction"] = p
    return Result("classify", metrics.classification_metrics(truth, pred, scores=scores), rows)


def _label_names(backend, n: int) -> list[str]:
    names = getattr(backend, "id2label", None) or {}
    return [names.get(i, str(i)) for i in range(n)]


def _pair_inputs(ex: dict, key: str):
    """Prompt + answer, as TRL's reward trainer joins them: strings concatenate; message lists join into one
    conversation that the model's chat template renders."""
    return ex["prompt"] + ex[key]


def _rm(backend, examples, **_) -> Result:
    chosen = backend.reward([_pair_inputs(ex, "chosen") for ex in examples])
    rejected = backend.reward([_pair_inputs(ex, "rejected") for ex in examples])
    rows = [{"chosen": c, "rejected": r} for c, r in zip(chosen, rejected, strict=True)]
    return Result("rm", metrics.preference_metrics(chosen, rejected), rows)


def _embed(backend, examples, *, ks, **_) -> Result:
    """Retrieval over the pool of every positive and negative in the file, each query against all."""
    corpus = list(dict.fromkeys(t for ex in examples for t in ex["positives"] + ex["negatives"]))
    doc_vectors = np.array(backend.embed(corpus))
    query_vectors = np.array(backend.embed([ex["query"] for ex in examples]))
    similarity = query_vectors @ doc_vectors.T
    rankings, qrels = [], []
    for ex, sims in zip(examples, similarity, strict=True):
        rankings.append(metrics.rank(corpus, sims.tolist()))
        qrels.append(dict.fromkeys(ex["positives"], 1.0))
    rows = [{"query": ex["query"], "top": r[:3]} for ex, r in zip(examples, rankings, strict=True)]
    return Result("embed", metrics.retrieval_metrics(rankings, qrels, ks=ks), rows)


def _rerank(backend, examples, *, ks, **_) -> Result:
    rankings, qrels, rows = [], [], []
    for ex in examples:
        docs = ex["positives"] + ex["negatives"]
        scores = backend.rerank(ex["query"], docs)
        rankings.append(metrics.rank(list(range(len(docs))), scores))
        qrels.append(dict.fromkeys(range(len(ex["positives"])), 1.0))
        rows.append({"query": ex["query"], "scores": scores})
    return Result("rerank", metrics.retrieval_metrics(rankings, qrels, ks=ks), rows)


def _score(backend, examples, **_) -> Result:
    predicted = backend.score([ex["text_1"] for ex in examples], [ex["text_2"] for ex in examples])
    truth = [ex["label"] for ex in examples]
    rows = [{"label": t, "prediction": p} for t, p in zip(truth, predicted, strict=True)]
    return Result("score", metrics.regression_metrics(truth, predicted), rows)
