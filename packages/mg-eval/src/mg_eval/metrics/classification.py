"""Classification metrics on label sequences (strings or ints), in numpy; all scores on 0-1.

Conventions follow scikit-learn with zero_division=0: a precision, recall or F1 whose denominator
is zero is 0. `labels=None` means the sorted union of the labels in y_true and y_pred; samples whose
labels are outside an explicit `labels` list still count as false positives/negatives of the listed
labels they touch (as in sklearn), but do not appear in the confusion matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mg_eval.metrics._common import Floats, average_ranks, check_pair, native

_AVERAGES = ("macro", "micro", "weighted", None)


def _labels_and_codes(y_true, y_pred, labels=None):
    """(labels, codes of y_true, codes of y_pred, number of codes): every value gets an integer code;
    the listed labels get codes 0..len(labels)-1, values outside them get higher codes."""
    true = [native(v) for v in np.asarray(y_true, dtype=object).ravel()]
    pred = [native(v) for v in np.asarray(y_pred, dtype=object).ravel()]
    check_pair(true, pred, ("y_true", "y_pred"))
    labels = sorted(set(true) | set(pred)) if labels is None else [native(v) for v in labels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels contain duplicates: {labels}")
    code = {label: i for i, label in enumerate(labels)}
    for value in true + pred:
        code.setdefault(value, len(code))
    return labels, np.array([code[v] for v in true]), np.array([code[v] for v in pred]), len(code)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (sklearn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _counts(y_true, y_pred, labels=None):
    """Per listed label: true positives, predicted count (tp + fp), true count (tp + fn = support)."""
    labels, true, pred, n_codes = _labels_and_codes(y_true, y_pred, labels)
    k = len(labels)
    tp = np.bincount(true[true == pred], minlength=n_codes)[:k]
    predicted = np.bincount(pred, minlength=n_codes)[:k]
    support = np.bincount(true, minlength=n_codes)[:k]
    return labels, tp, predicted, support


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of samples whose predicted label equals the true label."""
    _, true, pred, _ = _labels_and_codes(y_true, y_pred)
    return float(np.mean(true == pred))


def precision_recall_f1(y_true: Sequence, y_pred: Sequence, *, average: str | None = "macro", labels=None):
    """Precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2 tp / (2 tp + fp + fn) per label.

    average="macro": unweighted mean over labels; "weighted": mean weighted by support (true count);
    "micro": tp, fp, fn summed over labels first (equals accuracy when every label is listed).
    Returns (precision, recall, f1) as floats, or, for average=None, as per-label numpy arrays in the
    order of `labels`. A zero denominator gives 0, like sklearn's zero_division=0.
    """
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    _, tp, predicted, support = _counts(y_true, y_pred, labels)
    if average == "micro":
        tp, predicted, support = tp.sum(), predicted.sum(), support.sum()
    precision = _divide(tp, predicted)
    recall = _divide(tp, support)
    f1 = _divide(2 * tp, predicted + support)  # 2tp + fp + fn = predicted + support
    if average is None:
        return precision, recall, f1
    if average == "micro":
        return float(precision), float(recall), float(f1)
    weights = support if average == "weighted" else np.ones_like(support)
    if weights.sum() == 0:  # weighted average with no true samples of any listed label
        return 0.0, 0.0, 0.0
    return tuple(float(np.average(score, weights=weights)) for score in (precision, recall, f1))


def classification_report(y_true: Sequence, y_pred: Sequence, labels=None) -> dict:
    """{label: {"precision", "recall", "f1", "support"}} per label (support = number of true samples)."""
    labels, tp, predicted, support = _counts(y_true, y_pred, labels)
    precision, recall, f1 = _divide(tp, predicted), _divide(tp, support), _divide(2 * tp, predicted + support)
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }


def confusion_matrix(y_true: Sequence, y_pred: Sequence, labels=None) -> tuple[list, list[list[int]]]:
    """(labels, matrix) with matrix[i][j] = number of samples of true label i predicted as label j.
    Samples whose true or predicted label is not in `labels` are left out."""
    labels, true, pred, _ = _labels_and_codes(y_true, y_pred, labels)
    k = len(labels)
    keep = (true < k) & (pred < k)
    matrix = np.bincount(true[keep] * k + pred[keep], minlength=k * k).reshape(k, k)
    return labels, matrix.tolist()


def roc_auc(y_true_binary: Sequence, scores: Floats) -> float:
    """Area under the ROC curve for a binary task, via the Mann-Whitney U statistic:

        AUC = (sum of the average ranks of the positives - P (P + 1) / 2) / (P * N)

    i.e. the probability that a random positive scores above a random negative, a tie counting 1/2
    (which is what sklearn's roc_auc_score gives with tied scores). The positive class is the larger
    of the two labels in sorted order (1 for 0/1, True for bools). Raises ValueError when y_true holds
    only one class (AUC is undefined) or when the scores are not finite.
    """
    classes = sorted({native(v) for v in np.asarray(y_true_binary, dtype=object).ravel()})
    if len(classes) != 2:
        raise ValueError(
            f"roc_auc needs exactly two classes in y_true, got {len(classes)}: {classes}"
            + (" (AUC is undefined with one class)" if len(classes) == 1 else "")
        )
    positive = np.array([native(v) == classes[1] for v in np.asarray(y_true_binary, dtype=object).ravel()])
    scores = np.asarray(scores, dtype=float).ravel()
    check_pair(positive, scores, ("y_true", "scores"))
    if not np.all(np.isfinite(scores)):
        raise ValueError("roc_auc: scores must be finite")
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    rank_sum = average_ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def multilabel_metrics(y_true, y_pred) -> dict[str, float]:
    """Metrics over 0/1 indicator matrices of shape (samples, labels):

    subset_accuracy: fraction of samples whose whole label set is right;
    hamming_loss: fraction of wrong (sample, label) cells;
    f1_micro / precision_micro / recall_micro: from tp, fp, fn summed over all cells;
    f1_macro: mean over labels (columns) of the per-label F1;
    f1_samples: mean over samples (rows) of the per-sample F1.
    Zero denominators give 0 (sklearn's zero_division=0), so a sample with no true and no predicted
    label has F1 0 in f1_samples.
    """
    true = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_pred).astype(bool)
    if true.shape != pred.shape or true.ndim != 2 or true.size == 0:
        raise ValueError(
            f"y_true and y_pred must be non-empty 2-D matrices of one shape: {true.shape}, {pred.shape}"
        )
    tp = true & pred
    predicted, actual = pred.sum(), true.sum()
    return {
        "subset_accuracy": float(np.mean(np.all(true == pred, axis=1))),
        "hamming_loss": float(np.mean(true != pred)),
        "f1_micro": float(_divide(2 * tp.sum(), predicted + actual)),
        "f1_macro": float(np.mean(_divide(2 * tp.sum(axis=0), pred.sum(axis=0) + true.sum(axis=0)))),
        "f1_samples": float(np.mean(_divide(2 * tp.sum(axis=1), pred.sum(axis=1) + true.sum(axis=1)))),
        "precision_micro": float(_divide(tp.sum(), predicted)),
        "recall_micro": float(_divide(tp.sum(), actual)),
    }


def classification_metrics(y_true: Sequence, y_pred: Sequence, scores: Floats | None = None) -> dict:
    """accuracy, f1_macro, f1_micro, f1_weighted, precision_macro, recall_macro, and roc_auc when
    `scores` are given.

    scores: probability (or any score) of the positive class, which is the larger of the two labels
    in sorted order; only for binary tasks (ValueError if y_true and y_pred hold more than two labels).
    roc_auc is nan when y_true holds a single class, so that a small evaluation slice does not crash.
    """
    precision_macro, recall_macro, f1_macro = precision_recall_f1(y_true, y_pred, average="macro")
    result = {
        "accuracy": accuracy(y_true, y_pred),
        "f1_macro": f1_macro,
        "f1_micro": precision_recall_f1(y_true, y_pred, average="micro")[2],
        "f1_weighted": precision_recall_f1(y_true, y_pred, average="weighted")[2],
        "precision_macro": precision_macro,
        "recall_macro": recall_macro,
    }
    if scores is not None:
        labels = _labels_and_codes(y_true, y_pred)[0]
        if len(labels) > 2:
            raise ValueError(f"scores are only supported for binary tasks; found labels {labels}")
        positive = [native(v) == labels[-1] for v in np.asarray(y_true, dtype=object).ravel()]
        check_pair(positive, np.asarray(scores, dtype=float).ravel(), ("y_true", "scores"))
        result["roc_auc"] = roc_auc(positive, scores) if len(set(positive)) == 2 else math.nan
    return result
