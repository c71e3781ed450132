"""Helpers shared by the metric modules: input checks, average ranks, CJK detection."""

from __future__ import annotations

import re
from collections.abc import Sequence, Sized

import numpy as np

# Han ideographs (URO, Ext A, compatibility, Ext B onwards) and Japanese kana: scripts written without
# spaces between words, so each character has to be its own token. Hangul is left out on purpose:
# Korean puts spaces between words, so it is tokenized like any other alphabet.
CJK_RANGES = (
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana
    "\u3400-\u4dbf"  # CJK Unified Ideographs Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\U00020000-\U0003134f"  # Extensions B to G, compatibility supplement
)
CJK_RE = re.compile(f"[{CJK_RANGES}]")

# The numbers a metric takes: a list (any sequence) of floats or a numpy array; np.asarray reads both.
Floats = Sequence[float] | np.ndarray


def has_cjk(texts: Sequence[str]) -> bool:
    return any(CJK_RE.search(text) for text in texts)


def check_pair(a: Sized, b: Sized, names: tuple[str, str]) -> None:
    """Raise ValueError unless `a` and `b` have the same, non-zero length."""
    if len(a) != len(b):
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {len(a)} != {len(b)}")
    if len(a) == 0:
        raise ValueError(f"{names[0]} and {names[1]} are empty")


def to_float_arrays(a, b, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two equal-length, non-empty 1-D float arrays."""
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    check_pair(x, y, names)
    return x, y


def average_ranks(values) -> np.ndarray:
    """1-based ranks in ascending order; tied values all get the mean of the ranks they span.

    This is scipy.stats.rankdata(method="average"), the ranking behind Spearman's rho and the
    Mann-Whitney form of ROC AUC.
    """
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts_group = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], len(x)]  # exclusive: the group holds sorted positions starts..ends-1
    mean_rank = (starts + ends + 1) / 2  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = mean_rank[group]
    return ranks


def native(value):
    """A numpy scalar as the matching Python scalar (so results stay JSON-serializable)."""
    return value.item() if isinstance(value, np.generic) else value
