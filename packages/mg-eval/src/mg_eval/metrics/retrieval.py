"""Ranking metrics for retrieval with graded or binary relevance, following trec_eval conventions.

Per query: `ranked_grades` are the relevance grades of the retrieved documents in rank order (0 for
a document the qrels do not judge) and `all_grades` are the grades of every document the qrels
judge for the query, retrieved or not. A grade > 0 means relevant; a grade <= 0 means not relevant
and adds no gain. All scores are on 0-1.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

# A document id: any hashable value (a string id, or a position in the candidate list for rerank).
DocId = TypeVar("DocId", bound=Hashable)


def rank(doc_ids: Sequence, scores: Sequence[float]) -> list:
    """doc_ids sorted by score, highest first. The sort is stable: documents with equal scores keep
    their input order, so results are reproducible (sklearn's ndcg_score instead averages over the
    orders of tied documents)."""
    if len(doc_ids) != len(scores):
        raise ValueError(f"doc_ids and scores differ in length: {len(doc_ids)} != {len(scores)}")
    if any(math.isnan(s) for s in scores):
        raise ValueError("rank: scores contain nan")
    order = sorted(range(len(doc_ids)), key=lambda i: -scores[i])  # sorted() is stable
    return [doc_ids[i] for i in order]


def _gains(grades: Sequence[float]) -> np.ndarray:
    return np.clip(np.asarray(grades, dtype=float), 0.0, None)


def _num_relevant(all_grades: Sequence[float]) -> int:
    return int(np.sum(np.asarray(all_grades, dtype=float) > 0))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def dcg_at_k(grades: Sequence[float], k: int) -> float:
    """DCG@k = sum_{i=1..min(k, n)} gain_i / log2(i + 1), with linear gain = grade (0 if grade <= 0)."""
    _check_k(k)
    gains = _gains(grades)[:k]
    return float(np.sum(gains / np.log2(np.arange(2, len(gains) + 2))))


def ndcg_at_k(ranked_grades: Sequence[float], all_grades: Sequence[float], k: int) -> float:
    """NDCG@k = DCG@k(ranked_grades) / DCG@k(all_grades sorted descending).

    The ideal ranking is built from all of the query's judged documents, not only the retrieved
    ones, so missing a relevant document costs score. 0 when the query has no relevant document.
    """
    ideal = dcg_at_k(sorted(_gains(all_grades), reverse=True), k)
    return dcg_at_k(ranked_grades, k) / ideal if ideal > 0 else 0.0


def recall_at_k(ranked_grades: Sequence[float], all_grades: Sequence[float], k: int) -> float:
    """Recall@k = (relevant documents in the top k) / (relevant documents in the qrels); 0 when the
    query has none."""
    _check_k(k)
    total = _num_relevant(all_grades)
    hits = int(np.sum(np.asarray(ranked_grades[:k], dtype=float) > 0))
    return hits / total if total else 0.0


def reciprocal_rank_at_k(ranked_grades: Sequence[float], k: int) -> float:
    """RR@k = 1 / (rank of the first relevant document), if that rank is <= k, else 0."""
    _check_k(k)
    for position, grade in enumerate(ranked_grades[:k], start=1):
        if grade > 0:
            return 1.0 / position
    return 0.0


def average_precision(ranked_grades: Sequence[float], all_grades: Sequence[float]) -> float:
    """AP = (1 / R) * sum over relevant ranks i of precision@i, over the whole ranked list, with
    binary relevance (grade > 0) and R = number of relevant documents in the qrels (so relevant
    documents never retrieved add 0). 0 when R = 0."""
    total = _num_relevant(all_grades)
    if total == 0:
        return 0.0
    relevant = np.asarray(ranked_grades, dtype=float) > 0
    precision_at_hits = np.cumsum(relevant)[relevant] / (np.flatnonzero(relevant) + 1)
    return float(precision_at_hits.sum() / total)


def _unique(ranking: Sequence) -> list:
    # A document retrieved twice counts once, at its first (best) rank, so recall stays <= 1.
    return list(dict.fromkeys(ranking))


def retrieval_metrics(
    rankings: Sequence[Sequence[DocId]],
    qrels: Sequence[Mapping[DocId, float]],
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float | int]:
    """Mean recall@k, mrr@k and ndcg@k for each k in ks, and map, over queries.

    rankings[q]: doc ids for query q, best first (see `rank`); qrels[q]: doc id -> relevance grade.
    Queries without any relevant document (no grade > 0) are left out of every mean, as trec_eval and
    pytrec_eval do, and counted in "queries_without_relevant"; "queries" counts the queries used.
    The means are nan if no query is used. MAP is over the full ranking, not cut at k.
    """
    if len(rankings) != len(qrels):
        raise ValueError(f"rankings and qrels differ in length: {len(rankings)} != {len(qrels)}")
    for k in ks:
        _check_k(k)
    per_query: dict[str, list[float]] = {f"{name}@{k}": [] for k in ks for name in ("recall", "mrr", "ndcg")}
    per_query["map"] = []
    skipped = 0
    for ranking, judged in zip(rankings, qrels, strict=True):
        all_grades = list(judged.values())
        if _num_relevant(all_grades) == 0:
            skipped += 1
            continue
        ranked_grades = [judged.get(doc, 0.0) for doc in _unique(ranking)]
        for k in ks:
            per_query[f"recall@{k}"].append(recall_at_k(ranked_grades, all_grades, k))
            per_query[f"mrr@{k}"].append(reciprocal_rank_at_k(ranked_grades, k))
            per_query[f"ndcg@{k}"].append(ndcg_at_k(ranked_grades, all_grades, k))
        per_query["map"].append(average_precision(ranked_grades, all_grades))
    used = len(rankings) - skipped
    result: dict[str, float | int] = {
        name: float(np.mean(values)) if used else math.nan for name, values in per_query.items()
    }
    result["queries"] = used
    result["queries_without_relevant"] = skipped
    return result
