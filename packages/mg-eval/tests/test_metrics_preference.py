"""Preference metrics checked against an explicit loop over the pairs."""

import numpy as np
import pytest

from mg_eval.metrics import mean_margin, pairwise_accuracy, preference_metrics


def test_against_loop_on_random_scores():
    rng = np.random.default_rng(0)
    chosen = np.round(rng.normal(0.5, 1, 200), 1)  # one decimal: some pairs tie
    rejected = np.round(rng.normal(0, 1, 200), 1)
    pairs = list(zip(chosen.tolist(), rejected.tolist(), strict=True))
    ties = sum(c == r for c, r in pairs)
    assert ties > 0
    assert pairwise_accuracy(chosen, rejected) == pytest.approx(sum(c > r for c, r in pairs) / len(pairs))
    assert mean_margin(chosen, rejected) == pytest.approx(sum(c - r for c, r in pairs) / len(pairs))
    assert preference_metrics(chosen.tolist(), rejected.tolist()) == pytest.approx(
        {
            "pairwise_accuracy": sum(c > r for c, r in pairs) / len(pairs),
            "mean_margin": sum(c - r for c, r in pairs) / len(pairs),
            "tie_rate": ties / len(pairs),
        }
    )


def test_tie_counts_as_wrong():
    # pairs: (1, 0) right, (2, 2) tie -> wrong, (3, 4) wrong
    assert pairwise_accuracy([1, 2, 3], [0, 2, 4]) == pytest.approx(1 / 3)
    # margins: 1 + 0 - 1 = 0
    assert mean_margin([1, 2, 3], [0, 2, 4]) == pytest.approx(0.0)
    assert pairwise_accuracy([0.5] * 4, [0.5] * 4) == 0.0


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        pairwise_accuracy([1, 2], [1])
