"""Classification metrics checked against scikit-learn on seeded random data."""

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mg_eval.metrics import (
    accuracy,
    classification_metrics,
    classification_report,
    confusion_matrix,
    multilabel_metrics,
    precision_recall_f1,
    roc_auc,
)


def _random_labels(seed: int, kind: str, n: int = 60):
    """y_true over four labels; y_pred never predicts the last one (its precision is 0/0 -> 0)."""
    rng = np.random.default_rng(seed)
    names = ["cat", "dog", "fish", "newt"] if kind == "str" else [3, 7, 11, 20]
    y_true = [names[i] for i in rng.integers(0, 4, n)]
    y_pred = [names[i] for i in rng.integers(0, 3, n)]
    return y_true, y_pred, names


CASES = [(seed, kind) for seed in (0, 1, 2) for kind in ("str", "int")]


@pytest.mark.parametrize(("seed", "kind"), CASES)
def test_accuracy(seed, kind):
    y_true, y_pred, _ = _random_labels(seed, kind)
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))


@pytest.mark.parametrize(("seed", "kind"), CASES)
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_precision_recall_f1_averages(seed, kind, average):
    y_true, y_pred, _ = _random_labels(seed, kind)
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
    assert precision_recall_f1(y_true, y_pred, average=average) == pytest.approx((p, r, f))


@pytest.mark.parametrize(("seed", "kind"), CASES)
def test_precision_recall_f1_per_label(seed, kind):
    y_true, y_pred, names = _random_labels(seed, kind)
    p, r, f, support = skm.precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    ours = precision_recall_f1(y_true, y_pred, average=None)
    for got, want in zip(ours, (p, r, f), strict=True):
        np.testing.assert_allclose(got, want)
    assert ours[0][-1] == 0.0  # the never-predicted label
    report = classification_report(y_true, y_pred)
    assert list(report) == sorted(names)
    for i, label in enumerate(sorted(names)):
        assert report[label] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": support[i]}
        )
    json.dumps(report)  # plain Python types only


@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
def test_explicit_labels_subset_and_absent_label(average):
    y_true, y_pred, _ = _random_labels(5, "str")
    labels = ["dog", "cat", "zebra"]  # a subset, in a custom order, plus a label that never occurs
    expected = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=average, zero_division=0
    )
    ours = precision_recall_f1(y_true, y_pred, labels=labels, average=average)
    for got, want in zip(ours, expected[:3], strict=True):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize(("seed", "kind"), CASES)
def test_confusion_matrix(seed, kind):
    y_true, y_pred, names = _random_labels(seed, kind)
    labels, matrix = confusion_matrix(y_true, y_pred)
    assert labels == sorted(names)
    assert matrix == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    subset = [names[2], names[0]]
    assert confusion_matrix(y_true, y_pred, labels=subset) == (
        subset,
        skm.confusion_matrix(y_true, y_pred, labels=subset).tolist(),
    )
    json.dumps([labels, matrix])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 80)
    scores = np.round(rng.random(80) * 0.5 + 0.3 * y, 1)  # one decimal: many tied scores
    assert len(np.unique(scores)) < 20
    assert roc_auc(y, scores) == pytest.approx(skm.roc_auc_score(y, scores))
    assert roc_auc(y.tolist(), scores.tolist()) == pytest.approx(skm.roc_auc_score(y, scores))


def test_roc_auc_all_tied_is_one_half_and_string_labels():
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(
        skm.roc_auc_score([0, 1, 0, 1], [0.5] * 4)
    )
    y = ["neg", "pos", "pos", "neg", "pos"]
    scores = [0.2, 0.7, 0.2, 0.4, 0.9]
    assert roc_auc(y, scores) == pytest.approx(skm.roc_auc_score([label == "pos" for label in y], scores))


def test_roc_auc_one_class_raises():
    with pytest.raises(ValueError, match="two classes"):
        roc_auc([1, 1, 1], [0.1, 0.5, 0.9])


def _random_multilabel(seed: int):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((40, 5)) < 0.3).astype(int)
    y_pred = (rng.random((40, 5)) < 0.3).astype(int)
    y_true[0] = y_pred[0] = 0  # a sample with no labels at all: F1 is 0/0 there
    y_pred[:, 4] = 0  # a label that is never predicted
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multilabel_metrics(seed):
    y_true, y_pred = _random_multilabel(seed)
    expected = {
        "subset_accuracy": skm.accuracy_score(y_true, y_pred),
        "hamming_loss": skm.hamming_loss(y_true, y_pred),
        "f1_micro": skm.f1_score(y_true, y_pred, average="micro", zero_division=0),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        "f1_samples": skm.f1_score(y_true, y_pred, average="samples", zero_division=0),
        "precision_micro": skm.precision_score(y_true, y_pred, average="micro", zero_division=0),
        "recall_micro": skm.recall_score(y_true, y_pred, average="micro", zero_division=0),
    }
    assert multilabel_metrics(y_true, y_pred) == pytest.approx(expected)
    assert multilabel_metrics(y_true.tolist(), y_pred.tolist()) == pytest.approx(expected)


def test_multilabel_shape_mismatch_raises():
    with pytest.raises(ValueError, match="2-D"):
        multilabel_metrics([[0, 1]], [[0, 1, 1]])


def test_classification_metrics_multiclass():
    y_true, y_pred, _ = _random_labels(3, "str")
    result = classification_metrics(y_true, y_pred)
    expected = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "f1_macro": skm.f1_score(y_true, y_pred, average="macro", zero_division=0),
        "f1_micro": skm.f1_score(y_true, y_pred, average="micro", zero_division=0),
        "f1_weighted": skm.f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "precision_macro": skm.precision_score(y_true, y_pred, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y_true, y_pred, average="macro", zero_division=0),
    }
    assert result == pytest.approx(expected)
    json.dumps(result)
    with pytest.raises(ValueError, match="binary"):
        classification_metrics(y_true, y_pred, scores=[0.5] * len(y_true))


def test_classification_metrics_binary_with_scores():
    rng = np.random.default_rng(7)
    y_true = ["spam" if v else "ham" for v in rng.integers(0, 2, 50)]  # "spam" sorts last: positive
    scores = np.round(rng.random(50), 1).tolist()
    y_pred = ["spam" if s >= 0.5 else "ham" for s in scores]
    result = classification_metrics(y_true, y_pred, scores=scores)
    positive = [label == "spam" for label in y_true]
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(positive, scores))
    assert result["f1_macro"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert "roc_auc" not in classification_metrics(y_true, y_pred)
    # One class in y_true: AUC undefined -> nan rather than an exception.
    assert math.isnan(classification_metrics([1, 1], [0, 1], scores=[0.2, 0.8])["roc_auc"])


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        accuracy([1, 2], [1])
