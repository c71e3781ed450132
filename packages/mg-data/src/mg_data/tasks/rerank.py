"""rerank: a query, its positives and negatives, optional graded scores
-> {"query", "positives", "negatives", "scores"?}.

`scores` (one per document, positives first) may be given as `scores` or FlagEmbedding's
`pos_scores`/`neg_scores`. A rerank row needs at least one negative: with none there is nothing to rank
against (pointwise pairs with a label belong to the `score` task).
"""

from __future__ import annotations

from mg_data.errors import RowError
from mg_data.tasks import embed
from mg_data.tasks.fields import number


def normalize(row, warn) -> dict:
    example = embed.normalize(row, warn)
    if not example["negatives"]:
        raise RowError(
            "no negatives: a rerank row needs at least one (a pair with a label is the score task)"
        )
    scores = _scores(row)
    if scores is not None:
        n = len(example["positives"]) + len(example["negatives"])
        if len(scores) != n:
            raise RowError(f"scores has {len(scores)} values for {n} documents (positives then negatives)")
        example["scores"] = scores
    return example


def _scores(row: dict) -> list[float] | None:
    if "scores" in row:
        parts = [("scores", row["scores"])]
    elif "pos_scores" in row or "neg_scores" in row:
        parts = [("pos_scores", row.get("pos_scores") or []), ("neg_scores", row.get("neg_scores") or [])]
    else:
        return None
    result = []
    for key, values in parts:
        if not isinstance(values, list):
            raise RowError(f"{key} must be a list of numbers")
        result += [number(v, f"{key}[{i}]") for i, v in enumerate(values)]
    return result
