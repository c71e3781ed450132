"""Preference (reward model) metrics over paired scores of a chosen and a rejected response.

pairwise_accuracy is on 0-1; mean_margin is in the units of the scores.
"""

from __future__ import annotations

import numpy as np

from mg_eval.metrics._common import Floats, to_float_arrays


def pairwise_accuracy(chosen_scores: Floats, rejected_scores: Floats) -> float:
    """Fraction of pairs with chosen > rejected, strictly. A tie counts as wrong: a model that gives
    every response the same score must not get credit for it."""
    chosen, rejected = to_float_arrays(chosen_scores, rejected_scores, ("chosen_scores", "rejected_scores"))
    return float(np.mean(chosen > rejected))


def mean_margin(chosen_scores: Floats, rejected_scores: Floats) -> float:
    """mean(chosen - rejected): how far, on average, the chosen response is scored above the rejected."""
    chosen, rejected = to_float_arrays(chosen_scores, rejected_scores, ("chosen_scores", "rejected_scores"))
    return float(np.mean(chosen - rejected))


def preference_metrics(chosen_scores: Floats, rejected_scores: Floats) -> dict[str, float]:
    """pairwise_accuracy, mean_margin, and tie_rate (fraction of pairs scored equal, which
    pairwise_accuracy counts as wrong) in one dict."""
    chosen, rejected = to_float_arrays(chosen_scores, rejected_scores, ("chosen_scores", "rejected_scores"))
    return {
        "pairwise_accuracy": pairwise_accuracy(chosen, rejected),
        "mean_margin": mean_margin(chosen, rejected),
        "tie_rate": float(np.mean(chosen == rejected)),
    }
