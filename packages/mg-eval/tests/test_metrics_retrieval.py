"""Retrieval metrics: hand-worked examples (arithmetic in the comments) and sklearn's ndcg_score."""

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from mg_eval.metrics import (
    average_precision,
    dcg_at_k,
    ndcg_at_k,
    rank,
    recall_at_k,
    reciprocal_rank_at_k,
    retrieval_metrics,
)


def test_rank_sorts_descending_and_keeps_input_order_on_ties():
    assert rank(["a", "b", "c", "d"], [0.5, 0.9, 0.5, 0.1]) == ["b", "a", "c", "d"]
    assert rank(["c", "a", "b"], [1.0, 1.0, 1.0]) == ["c", "a", "b"]
    with pytest.raises(ValueError, match="differ in length"):
        rank(["a"], [1.0, 2.0])


def test_ndcg_with_graded_gains():
    # Ranked grades 3, 2, 0, 1; all judged docs are retrieved.
    # DCG@4  = 3/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5) = 3 + 1.2619 + 0 + 0.4307 = 4.6925
    # IDCG@4 = 3/log2(2) + 2/log2(3) + 1/log2(4)             = 3 + 1.2619 + 0.5      = 4.7619
    dcg = 3 + 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert dcg_at_k([3, 2, 0, 1], 4) == pytest.approx(dcg)
    assert ndcg_at_k([3, 2, 0, 1], [3, 2, 0, 1], 4) == pytest.approx(dcg / idcg)  # ~0.9854
    # @2: the top two are already ideal.
    assert ndcg_at_k([3, 2, 0, 1], [3, 2, 0, 1], 2) == pytest.approx(1.0)
    # @3 = (3 + 2/log2(3)) / (3 + 2/log2(3) + 1/log2(4))
    assert ndcg_at_k([3, 2, 0, 1], [3, 2, 0, 1], 3) == pytest.approx((3 + 2 / math.log2(3)) / idcg)


def test_ndcg_ideal_uses_unretrieved_documents_and_k_beyond_list():
    # Retrieved grades 0, 2; the qrels also hold a grade-3 doc that was not retrieved.
    # DCG@10  = 0/log2(2) + 2/log2(3)          = 1.2619  (the list ends after 2 docs)
    # IDCG@10 = 3/log2(2) + 2/log2(3)          = 4.2619  (ideal from all qrels grades 3, 2)
    assert ndcg_at_k([0, 2], [2, 3], 10) == pytest.approx((2 / math.log2(3)) / (3 + 2 / math.log2(3)))
    # @1: DCG 0, IDCG 3
    assert ndcg_at_k([0, 2], [2, 3], 1) == 0.0
    assert ndcg_at_k([0, 0], [0, 0], 5) == 0.0  # nothing relevant: 0, not 0/0


def test_map_mrr_recall_by_hand():
    # Ranking x, y, z, w with x and z relevant; the qrels also hold relevant v, never retrieved: R = 3.
    ranked = [1, 0, 1, 0]
    judged = [1, 1, 1, 0]  # x, z, v relevant; y judged non-relevant
    # AP = (P@1 + P@3) / R = (1/1 + 2/3) / 3 = 0.5556
    assert average_precision(ranked, judged) == pytest.approx((1 + 2 / 3) / 3)
    # first relevant at rank 1
    assert reciprocal_rank_at_k(ranked, 1) == 1.0
    # first relevant at rank 3: RR@2 = 0, RR@5 = 1/3
    assert reciprocal_rank_at_k([0, 0, 1], 2) == 0.0
    assert reciprocal_rank_at_k([0, 0, 1], 5) == pytest.approx(1 / 3)
    # recall@1 = 1/3, recall@3 = 2/3, recall@100 = 2/3 (v is never found)
    assert recall_at_k(ranked, judged, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, judged, 3) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, judged, 100) == pytest.approx(2 / 3)


def test_retrieval_metrics_by_hand():
    rankings = [
        # q1: scores tie between d2 and d3; rank keeps input order -> d1, d2, d3, d4
        rank(["d1", "d2", "d3", "d4"], [0.9, 0.5, 0.5, 0.1]),
        # q2: first relevant at rank 2
        ["e1", "e2", "e3"],
        # q3: nothing relevant in the qrels -> left out of the means, counted
        ["f1", "f2"],
    ]
    qrels = [
        {"d1": 0, "d2": 2, "d4": 1, "d9": 3},  # d3 unjudged (grade 0); d9 relevant but not retrieved
        {"e2": 1, "e3": 0},
        {"f1": 0},
    ]
    assert rankings[0] == ["d1", "d2", "d3", "d4"]
    # q1: ranked grades 0, 2, 0, 1; relevant d2, d4, d9 (R = 3); ideal grades 3, 2, 1
    #   recall@1 = 0, recall@5 = 2/3
    #   RR@1 = 0, RR@5 = 1/2
    #   nDCG@1 = 0 / 3 = 0
    #   nDCG@5 = (2/log2(3) + 1/log2(5)) / (3 + 2/log2(3) + 1/log2(4))
    #   AP = (P@2 + P@4) / 3 = (1/2 + 2/4) / 3 = 1/3
    # q2: ranked grades 0, 1, 0; relevant e2 (R = 1); ideal grades 1
    #   recall@1 = 0, recall@5 = 1;  RR@1 = 0, RR@5 = 1/2
    #   nDCG@1 = 0, nDCG@5 = (1/log2(3)) / 1
    #   AP = P@2 / 1 = 1/2
    q1_ndcg5 = (2 / math.log2(3) + 1 / math.log2(5)) / (3 + 2 / math.log2(3) + 1 / math.log2(4))
    q2_ndcg5 = 1 / math.log2(3)
    expected = {
        "recall@1": 0.0,
        "mrr@1": 0.0,
        "ndcg@1": 0.0,
        "recall@5": (2 / 3 + 1) / 2,
        "mrr@5": (1 / 2 + 1 / 2) / 2,
        "ndcg@5": (q1_ndcg5 + q2_ndcg5) / 2,
        "map": (1 / 3 + 1 / 2) / 2,
        "queries": 2,
        "queries_without_relevant": 1,
    }
    result = retrieval_metrics(rankings, qrels, ks=(1, 5))
    assert result == pytest.approx(expected)
    assert set(result) == set(expected)


def test_retrieval_metrics_k_beyond_list_and_duplicates():
    # One query, ranking a, b (b relevant, grade 2). k = 10 > 2 retrieved docs.
    # recall@10 = 1, RR@10 = 1/2, nDCG@10 = (2/log2(3)) / 2, AP = (1/2) / 1
    # "b" retrieved twice counts once, at rank 2.
    result = retrieval_metrics([["a", "b", "b"]], [{"b": 2}], ks=(10,))
    assert result == pytest.approx(
        {
            "recall@10": 1.0,
            "mrr@10": 0.5,
            "ndcg@10": (2 / math.log2(3)) / 2,
            "map": 0.5,
            "queries": 1,
            "queries_without_relevant": 0,
        }
    )


def test_retrieval_metrics_with_no_usable_query_gives_nan():
    result = retrieval_metrics([["a"]], [{"a": 0}], ks=(1,))
    assert result["queries"] == 0 and result["queries_without_relevant"] == 1
    assert math.isnan(result["ndcg@1"]) and math.isnan(result["map"])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("k", [1, 3, 5, 20])
def test_ndcg_matches_sklearn_when_all_graded_docs_are_ranked(seed, k):
    rng = np.random.default_rng(seed)
    grades = rng.integers(0, 4, 12).tolist()
    grades[0] = 3  # at least one relevant doc
    scores = rng.permutation(12).tolist()  # distinct: sklearn averages over tied orders, we do not
    doc_ids = [f"d{i}" for i in range(12)]
    ranking = rank(doc_ids, scores)
    grade_of = dict(zip(doc_ids, grades, strict=True))
    ours = ndcg_at_k([grade_of[d] for d in ranking], grades, k)
    assert ours == pytest.approx(ndcg_score([grades], [scores], k=k))
    assert retrieval_metrics([ranking], [grade_of], ks=(k,))[f"ndcg@{k}"] == pytest.approx(ours)


def test_query_without_relevant_is_excluded_where_sklearn_counts_zero():
    # sklearn's ndcg_score averages a query with no relevant doc in as 0; trec_eval leaves it out.
    grades = [[2, 0, 1], [0, 0, 0]]
    scores = [[3, 2, 1], [3, 2, 1]]
    only_first = ndcg_score(grades[:1], scores[:1])
    assert ndcg_score(grades, scores) == pytest.approx(only_first / 2)
    rankings = [["a", "b", "c"], ["a", "b", "c"]]
    qrels = [dict(zip("abc", g, strict=True)) for g in grades]
    assert retrieval_metrics(rankings, qrels, ks=(3,))["ndcg@3"] == pytest.approx(only_first)
