"""Text generation metrics: BLEU, chrF, ROUGE, exact match, perplexity.

BLEU, chrF and ROUGE are on a 0-100 scale (as sacrebleu and LLaMA-Factory report them); exact match
is on 0-1. `references` may hold one reference string per prediction, or a list of reference strings
per prediction (the lists may differ in length).

Two definitions of BLEU and ROUGE (`generation_metrics(..., style=)`): "sacrebleu" (corpus BLEU,
rouge_score's ROUGE, the functions below) and "llamafactory" (LLaMA-Factory's per-sample definitions,
in llamafactory_style.py, for users who compare with its numbers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Literal, get_args

from mg_eval.metrics._common import CJK_RANGES, check_pair, has_cjk
from mg_eval.metrics.llamafactory_style import check_available, llamafactory_metrics

References = Sequence[str] | Sequence[Sequence[str]]
MetricsStyle = Literal["sacrebleu", "llamafactory"]
METRICS_STYLES: tuple[str, ...] = get_args(MetricsStyle)

# One CJK character, or a run of letters/digits that are not CJK ([^\W_] = word characters but "_").
_TOKEN_RE = re.compile(f"[{CJK_RANGES}]|[^\\W_{CJK_RANGES}]+")


def _reference_lists(predictions: Sequence[str], references: References) -> list[list[str]]:
    """references as one list of reference strings per prediction."""
    check_pair(predictions, references, ("predictions", "references"))
    lists = [[refs] if isinstance(refs, str) else list(refs) for refs in references]
    if any(len(refs) == 0 for refs in lists):
        raise ValueError("every prediction needs at least one reference")
    return lists


def _reference_streams(predictions: Sequence[str], references: References) -> list[list[str | None]]:
    """references transposed to sacrebleu's layout: stream j holds the j-th reference of every
    prediction, None where a prediction has fewer references (sacrebleu skips those)."""
    lists = _reference_lists(predictions, references)
    width = max(len(refs) for refs in lists)
    return [[refs[j] if j < len(refs) else None for refs in lists] for j in range(width)]


def bleu(predictions: Sequence[str], references: References, *, tokenize: str = "auto") -> float:
    """Corpus BLEU-4 from sacrebleu (default settings: exp smoothing, no lowercasing), 0-100.

    BLEU = BP * exp(sum_{n=1..4} 1/4 * log p_n), with p_n the clipped n-gram precision summed over the
    corpus and BP = min(1, exp(1 - r/c)) (r: closest reference length, c: prediction length).

    tokenize: any sacrebleu tokenizer name; "auto" picks "zh" (each Chinese character a token) when a
    reference contains CJK characters, else "13a" (sacrebleu's default, as in mteval-v13a).
    """
    from sacrebleu.metrics import BLEU

    streams = _reference_streams(predictions, references)
    if tokenize == "auto":
        tokenize = "zh" if any(has_cjk([r for r in stream if r is not None]) for stream in streams) else "13a"
    # sacrebleu skips a None reference (its docs say so) but annotates references as Sequence[Sequence[str]].
    return float(BLEU(tokenize=tokenize).corpus_score(list(predictions), streams).score)  # type: ignore[arg-type]


def chrf(predictions: Sequence[str], references: References) -> float:
    """Corpus chrF from sacrebleu (character 6-grams, beta = 2, no word n-grams), 0-100.

    chrF = (1 + beta^2) * chrP * chrR / (beta^2 * chrP + chrR), with chrP/chrR the character n-gram
    precision/recall averaged over n = 1..6. Works on characters, so it needs no tokenizer for Chinese.
    """
    from sacrebleu.metrics import CHRF

    streams = _reference_streams(predictions, references)
    # sacrebleu skips a None reference (its docs say so) but annotates references as Sequence[Sequence[str]].
    return float(CHRF().corpus_score(list(predictions), streams).score)  # type: ignore[arg-type]


def rouge_tokenize(text: str) -> list[str]:
    """Tokens for ROUGE: every CJK character is a token; runs of other letters/digits are lowercased
    word tokens; punctuation, symbols, underscores and whitespace are dropped.

    For ASCII text this equals rouge_score's default tokenizer without stemming. Splitting on
    whitespace instead would make a whole Chinese sentence a single token.
    """
    return _TOKEN_RE.findall(text.lower())


# rouge_score only needs an object with a tokenize(text) method.
_ROUGE_TOKENIZER = SimpleNamespace(tokenize=rouge_tokenize)
_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge(predictions: Sequence[str], references: References) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 over the pairs, x100 (0-100), from rouge_score.

    ROUGE-N F1 = 2 * overlap / (|pred n-grams| + |ref n-grams|); ROUGE-L uses the longest common
    subsequence: P = LCS/|pred|, R = LCS/|ref|, F1 = 2PR/(P+R). Tokens come from `rouge_tokenize`
    (CJK-aware, no stemming). With several references, each type takes the best-scoring reference
    (rouge_score's score_multi).
    """
    # rouge_score pulls in nltk, which takes seconds to import: only pay that when ROUGE is asked for.
    from rouge_score.rouge_scorer import RougeScorer

    lists = _reference_lists(predictions, references)
    scorer = RougeScorer(list(_ROUGE_TYPES), tokenizer=_ROUGE_TOKENIZER)
    totals = dict.fromkeys(_ROUGE_TYPES, 0.0)
    for prediction, refs in zip(predictions, lists, strict=True):
        scores = scorer.score_multi(refs, prediction)
        for name in _ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100.0 * total / len(lists) for name, total in totals.items()}


def exact_match(predictions: Sequence[str], references: References) -> float:
    """Fraction (0-1) of predictions equal to one of their references after stripping surrounding
    whitespace. Case and inner whitespace count."""
    lists = _reference_lists(predictions, references)
    hits = sum(any(p.strip() == r.strip() for r in refs) for p, refs in zip(predictions, lists, strict=True))
    return hits / len(lists)


def perplexity(mean_loss: float) -> float:
    """exp(mean token negative log-likelihood, in nats). Returns inf instead of overflowing for large
    losses (exp(x) overflows a float past x ~ 709.78); nan stays nan."""
    try:
        return math.exp(mean_loss)
    except OverflowError:
        return math.inf


def check_metrics_style(style: str) -> None:
    """Raise now rather than at the first evaluation of a long run: ValueError for a name that is not a
    style, MissingMetricsExtra when style "llamafactory" lacks its extra."""
    if style not in METRICS_STYLES:
        raise ValueError(f"unknown metrics style {style!r}; use one of: {', '.join(METRICS_STYLES)}")
    if style == "llamafactory":
        check_available()


def generation_metrics(
    predictions: Sequence[str], references: References, *, style: MetricsStyle = "sacrebleu"
) -> dict[str, float]:
    """BLEU and ROUGE in one dict, by one of two definitions:

    style "sacrebleu": bleu, chrf, rouge1, rouge2, rougeL (0-100) and exact_match (0-1), from the
    functions above. style "llamafactory": bleu-4, rouge-1, rouge-2, rouge-l (0-100) as LLaMA-Factory
    computes them (llamafactory_style.py); needs the llamafactory-metrics extra (MissingMetricsExtra
    says so) and one reference per prediction.
    """
    check_metrics_style(style)
    if style == "llamafactory":
        return llamafactory_metrics(predictions, references)
    return {
        "bleu": bleu(predictions, references),
        "chrf": chrf(predictions, references),
        **rouge(predictions, references),
        "exact_match": exact_match(predictions, references),
    }
