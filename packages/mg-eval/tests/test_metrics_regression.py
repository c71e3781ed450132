"""Regression metrics checked against scikit-learn and scipy."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error

from mg_eval.metrics import mae, mse, pearson, regression_metrics, spearman


def _random_pair(seed: int):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=50)
    return y_true, 0.6 * y_true + rng.normal(scale=0.8, size=50)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_references(seed):
    y_true, y_pred = _random_pair(seed)
    assert mse(y_true, y_pred) == pytest.approx(mean_squared_error(y_true, y_pred))
    assert mae(y_true, y_pred) == pytest.approx(mean_absolute_error(y_true, y_pred))
    assert pearson(y_true, y_pred) == pytest.approx(stats.pearsonr(y_true, y_pred).statistic)
    assert spearman(y_true, y_pred) == pytest.approx(stats.spearmanr(y_true, y_pred).statistic)
    assert regression_metrics(y_true.tolist(), y_pred.tolist()) == pytest.approx(
        {
            "mse": mean_squared_error(y_true, y_pred),
            "mae": mean_absolute_error(y_true, y_pred),
            "pearson": stats.pearsonr(y_true, y_pred).statistic,
            "spearman": stats.spearmanr(y_true, y_pred).statistic,
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, 40)  # four distinct values in 40 draws: heavy ties on both sides
    y = x + rng.integers(0, 3, 40)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    # With ties, rho is Pearson on average ranks, not the 1 - 6 sum(d^2) / (n (n^2 - 1)) shortcut.
    assert spearman(x, y) == pytest.approx(stats.pearsonr(stats.rankdata(x), stats.rankdata(y)).statistic)


def test_perfect_and_inverse_correlation():
    x = [1.0, 2.0, 4.0, 8.0]
    assert pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)
    assert spearman(x, [-(v**3) for v in x]) == pytest.approx(-1.0)


def test_constant_input_gives_nan():
    # 0.1 * 3 is constant but its mean is not exactly 0.1; it must still count as constant.
    for constant in ([0.1, 0.1, 0.1], [5, 5, 5]):
        assert math.isnan(pearson(constant, [1, 2, 3]))
        assert math.isnan(spearman([1, 2, 3], constant))
    result = regression_metrics([1, 1, 1], [1, 2, 3])
    assert math.isnan(result["pearson"]) and math.isnan(result["spearman"])
    assert result["mse"] == pytest.approx(mean_squared_error([1, 1, 1], [1, 2, 3]))
    assert math.isnan(pearson([1.0], [2.0]))


def test_nan_input_gives_nan_and_length_mismatch_raises():
    assert math.isnan(spearman([1, 2, math.nan], [1, 2, 3]))
    with pytest.raises(ValueError, match="differ in length"):
        mse([1, 2], [1])
