"""Regression metrics: errors and correlations between true and predicted values.

mse and mae are in the squared / plain units of the target; pearson and spearman are in [-1, 1].
A correlation is undefined when either input is constant (zero variance) or has fewer than two
values: pearson and spearman then return nan rather than raise (scipy also gives nan, with a
warning), so one degenerate evaluation slice does not stop a run. Any nan in the input also gives nan.
"""

from __future__ import annotations

import math

import numpy as np

from mg_eval.metrics._common import Floats, average_ranks, to_float_arrays


def mse(y_true: Floats, y_pred: Floats) -> float:
    """Mean squared error: mean((y_true - y_pred)^2)."""
    x, y = to_float_arrays(y_true, y_pred, ("y_true", "y_pred"))
    return float(np.mean((x - y) ** 2))


def mae(y_true: Floats, y_pred: Floats) -> float:
    """Mean absolute error: mean(|y_true - y_pred|)."""
    x, y = to_float_arrays(y_true, y_pred, ("y_true", "y_pred"))
    return float(np.mean(np.abs(x - y)))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    # Test constancy on the raw values: x - mean(x) of a constant float array need not be exactly 0
    # (e.g. mean([0.1] * 3) != 0.1), which would turn 0/0 into a meaningless number.
    if len(x) < 2 or np.isnan(x).any() or np.isnan(y).any() or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    r = np.dot(dx, dy) / math.sqrt(np.dot(dx, dx) * np.dot(dy, dy))
    return float(np.clip(r, -1.0, 1.0))  # rounding can step just past +-1


def pearson(y_true: Floats, y_pred: Floats) -> float:
    """Pearson's r = sum((x - mean x)(y - mean y)) / sqrt(sum((x - mean x)^2) * sum((y - mean y)^2)).
    nan for constant input or fewer than two values."""
    return _pearson(*to_float_arrays(y_true, y_pred, ("y_true", "y_pred")))


def spearman(y_true: Floats, y_pred: Floats) -> float:
    """Spearman's rho: Pearson's r of the ranks, tied values sharing their average rank (as
    scipy.stats.spearmanr). nan for constant input or fewer than two values."""
    x, y = to_float_arrays(y_true, y_pred, ("y_true", "y_pred"))
    if np.isnan(x).any() or np.isnan(y).any():
        return math.nan
    return _pearson(average_ranks(x), average_ranks(y))


def regression_metrics(y_true: Floats, y_pred: Floats) -> dict[str, float]:
    """mse, mae, pearson and spearman in one dict."""
    return {
        "mse": mse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "pearson": pearson(y_true, y_pred),
        "spearman": spearman(y_true, y_pred),
    }
