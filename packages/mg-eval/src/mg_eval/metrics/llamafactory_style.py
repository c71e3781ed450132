"""BLEU-4 and ROUGE as LLaMA-Factory defines them (`metrics_style: llamafactory`).

LLaMA-Factory users compare our numbers with the ones its SFT evaluation prints (its `ComputeSimilarity`),
which are defined differently from sacrebleu's corpus BLEU and rouge_score's ROUGE. For each pair:

- bleu-4: nltk's sentence BLEU-4 on characters (every character a token, whitespace included), uniform
  weights, smoothing method3 (NIST geometric: the k-th n-gram order with no match counts 1 / (2^k * total)).
- rouge-1, rouge-2, rouge-l: F-scores on the words jieba segments, as the rouge-chinese package computes
  them: ROUGE-N over the sets of distinct n-grams, ROUGE-L over the longest common subsequence of the words,
  F = 2PR / (P + R + 1e-8). A prediction or reference with no words scores 0 on all three.

Each score is x100 and rounded to 4 decimals per pair (as LLaMA-Factory does), then averaged over the pairs.
Keys: "bleu-4", "rouge-1", "rouge-2", "rouge-l", LLaMA-Factory's names.

ROUGE is computed here rather than with rouge-chinese: that package has had no release since 2022, and its
wheel also installs a top-level `rouge` module over any other package of that name. The steps below are
the ones its scores depend on; the tests check them against rouge-chinese itself.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from typing import Any

from mg_eval.metrics._common import check_pair

EXTRA = "llamafactory-metrics"
KEYS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")


class MissingMetricsExtra(RuntimeError):
    """metrics_style llamafactory needs jieba and nltk: the llamafactory-metrics extra is not installed."""


def _libraries() -> tuple[Any, Any, Any]:
    """jieba's cut, nltk's sentence_bleu and its method3 smoothing, imported on first use (nltk takes
    seconds to import and jieba builds its dictionary on the first cut)."""
    try:
        # jieba 0.42.1's regexes are not raw strings: Python warns compiling them, nothing for a user to act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import jieba
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    except ImportError as e:
        raise MissingMetricsExtra(
            f"metrics_style llamafactory needs the {EXTRA} extra ({e.name or e} is missing): "
            f"pip install 'mg-eval[{EXTRA}]'"
        ) from None
    # jieba logs "Building prefix dict ..." at INFO on stderr; the metrics must not print.
    jieba.setLogLevel(logging.WARNING)
    return jieba.cut, sentence_bleu, SmoothingFunction().method3


def check_available() -> None:
    """Raise MissingMetricsExtra now, before a run that would only need the extra at its end."""
    _libraries()


# rouge-chinese cuts a text into sentences before counting, and the cut leaves marks in the word list it
# counts: a line break goes in after 。！？? (or six dots, or two …) unless a closing quote follows, and after
# such a mark with a closing quote unless more punctuation follows. A sentence of only whitespace then
# counts as one empty word, and a cut inside a token splits it. These rules are its definition of the words.
_SENTENCE_BREAKS = (
    re.compile(r"([。！？?])([^”’])"),
    re.compile(r"(\.{6})([^”’])"),
    re.compile(r"(…{2})([^”’])"),
    re.compile(r"([。！？?][”’])([^，。！？?])"),
)


def _rouge_words(text: str) -> list[str]:
    """The words rouge-chinese counts in `text` (jieba's words joined by spaces), sentences flattened."""
    for pattern in _SENTENCE_BREAKS:
        text = pattern.sub("\\1\n\\2", text)
    words: list[str] = []
    for sentence in text.rstrip().split("\n"):
        if sentence:
            words.extend(" ".join(sentence.split()).split(" "))
    return words


def _f_score(overlap: int, n_prediction: int, n_reference: int) -> float:
    precision = overlap / n_prediction if n_prediction else 0.0
    recall = overlap / n_reference if n_reference else 0.0
    # The 1e-8 is rouge-chinese's (it keeps 0/0 away); kept so the numbers match to the last digit.
    return 2.0 * precision * recall / (precision + recall + 1e-8)


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _rouge_n(prediction: list[str], reference: list[str], n: int) -> float:
    """Distinct n-grams: a repeated n-gram counts once on both sides."""
    ours, theirs = _ngrams(prediction, n), _ngrams(reference, n)
    return _f_score(len(ours & theirs), len(ours), len(theirs))


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, one row of the dynamic programme at a time."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _rouge_l(prediction: list[str], reference: list[str]) -> float:
    return _f_score(_lcs_length(prediction, reference), len(prediction), len(reference))


def _percent(score: float) -> float:
    """x100, rounded to 4 decimals per pair as LLaMA-Factory rounds before it averages."""
    return round(score * 100, 4)


def _pair_scores(prediction: str, reference: str, libraries: tuple[Any, Any, Any]) -> dict[str, float]:
    """bleu-4, rouge-1, rouge-2 and rouge-l (0-100) of one prediction against its reference."""
    cut, sentence_bleu, method3 = libraries
    bleu = sentence_bleu([list(reference)], list(prediction), smoothing_function=method3)
    scores = {"bleu-4": _percent(bleu)}
    hypothesis = " ".join(cut(prediction))
    target = " ".join(cut(reference))
    if not hypothesis.split() or not target.split():
        return scores | {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    ours, theirs = _rouge_words(hypothesis), _rouge_words(target)
    return scores | {
        "rouge-1": _percent(_rouge_n(ours, theirs, 1)),
        "rouge-2": _percent(_rouge_n(ours, theirs, 2)),
        "rouge-l": _percent(_rouge_l(ours, theirs)),
    }


def _single_references(predictions: Sequence[str], references) -> list[str]:
    """One reference string per prediction: LLaMA-Factory's definition has no multi-reference form."""
    check_pair(predictions, references, ("predictions", "references"))
    singles = []
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            singles.append(refs)
        elif len(refs) == 1:
            singles.append(refs[0])
        else:
            raise ValueError(
                f"metrics_style llamafactory scores one reference per prediction; prediction {i} has {len(refs)}"
            )
    return singles


def llamafactory_metrics(predictions: Sequence[str], references) -> dict[str, float]:
    """Mean per-pair bleu-4, rouge-1, rouge-2, rouge-l (0-100), LLaMA-Factory's definitions (module doc)."""
    singles = _single_references(predictions, references)
    libraries = _libraries()
    totals = dict.fromkeys(KEYS, 0.0)
    for prediction, reference in zip(predictions, singles, strict=True):
        for key, value in _pair_scores(prediction, reference, libraries).items():
            totals[key] += value
    return {key: total / len(singles) for key, total in totals.items()}
