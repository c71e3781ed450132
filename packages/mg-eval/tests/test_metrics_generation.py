"""Generation metrics checked against sacrebleu and rouge_score computed here, not stored numbers."""

import math
from types import SimpleNamespace

import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer

from mg_eval.metrics import (
    bleu,
    chrf,
    exact_match,
    generation_metrics,
    perplexity,
    rouge,
    rouge_tokenize,
)

EN_PREDICTIONS = [
    "The cat sat on the mat.",
    "There is a dog in the garden, barking loudly.",
    "He reads the newspaper every morning.",
]
EN_REFERENCES = [
    "The cat is sitting on the mat.",
    "A dog is barking loudly in the garden.",
    "Every morning he reads the newspaper.",
]
EN_SECOND_REFERENCES = [
    "A cat sat on the mat.",
    "In the garden a dog barks loudly.",
    "He reads a newspaper each morning.",
]
ZH_PREDICTIONS = ["今天天气很好，我们去公园散步。", "他喜欢看书和写字。", "机器学习是人工智能的一个分支。"]
ZH_REFERENCES = ["今天天气不错，我们去公园走走吧。", "他喜欢读书和写字。", "机器学习是人工智能的重要分支。"]


def test_bleu_english_equals_sacrebleu_13a():
    expected = sacrebleu.corpus_bleu(EN_PREDICTIONS, [EN_REFERENCES]).score  # 13a is sacrebleu's default
    assert 0 < expected < 100
    assert bleu(EN_PREDICTIONS, EN_REFERENCES) == pytest.approx(expected)
    assert bleu(EN_PREDICTIONS, EN_REFERENCES, tokenize="13a") == pytest.approx(expected)


def test_bleu_chinese_auto_picks_zh_tokenizer():
    expected = sacrebleu.corpus_bleu(ZH_PREDICTIONS, [ZH_REFERENCES], tokenize="zh").score
    with_13a = sacrebleu.corpus_bleu(ZH_PREDICTIONS, [ZH_REFERENCES], tokenize="13a").score
    assert expected != pytest.approx(with_13a)  # so the equality below shows "zh" was chosen
    assert bleu(ZH_PREDICTIONS, ZH_REFERENCES) == pytest.approx(expected)
    assert bleu(ZH_PREDICTIONS, ZH_REFERENCES, tokenize="13a") == pytest.approx(with_13a)


def test_bleu_and_chrf_multi_reference():
    per_prediction = [[a, b] for a, b in zip(EN_REFERENCES, EN_SECOND_REFERENCES, strict=True)]
    # sacrebleu takes reference streams: stream j holds the j-th reference of every prediction.
    streams = [EN_REFERENCES, EN_SECOND_REFERENCES]
    multi_bleu = sacrebleu.corpus_bleu(EN_PREDICTIONS, streams).score
    assert multi_bleu > sacrebleu.corpus_bleu(EN_PREDICTIONS, [EN_REFERENCES]).score
    assert bleu(EN_PREDICTIONS, per_prediction) == pytest.approx(multi_bleu)
    assert chrf(EN_PREDICTIONS, per_prediction) == pytest.approx(
        sacrebleu.corpus_chrf(EN_PREDICTIONS, streams).score
    )


def test_bleu_variable_number_of_references():
    references = [[EN_REFERENCES[0], EN_SECOND_REFERENCES[0]], EN_REFERENCES[1], [EN_REFERENCES[2]]]
    # sacrebleu skips None entries in a reference stream.
    streams = [EN_REFERENCES, [EN_SECOND_REFERENCES[0], None, None]]
    assert bleu(EN_PREDICTIONS, references) == pytest.approx(
        sacrebleu.corpus_bleu(EN_PREDICTIONS, streams).score
    )


def test_chrf_equals_sacrebleu():
    for predictions, references in ((EN_PREDICTIONS, EN_REFERENCES), (ZH_PREDICTIONS, ZH_REFERENCES)):
        expected = sacrebleu.corpus_chrf(predictions, [references]).score
        assert 0 < expected < 100
        assert chrf(predictions, references) == pytest.approx(expected)


def test_bleu_length_mismatch_raises():
    with pytest.raises(ValueError, match="differ in length"):
        bleu(EN_PREDICTIONS, EN_REFERENCES[:2])
    with pytest.raises(ValueError, match="at least one reference"):
        bleu(["a"], [[]])


def _default_rouge(pairs):
    """Mean F1 x100 from rouge_score's default scorer (no stemming)."""
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    scores = [scorer.score(ref, pred) for pred, ref in pairs]
    return {
        name: 100 * sum(s[name].fmeasure for s in scores) / len(scores)
        for name in ("rouge1", "rouge2", "rougeL")
    }


# Segmented by hand: one token per Chinese character, Latin words lowercased, punctuation dropped.
ZH_HAND_SEGMENTED = [
    ("今天天气很好，我们去公园散步。", "今 天 天 气 很 好 我 们 去 公 园 散 步"),
    ("今天天气不错，我们去公园走走吧。", "今 天 天 气 不 错 我 们 去 公 园 走 走 吧"),
    ("我用Python写了3个GPU程序！", "我 用 python 写 了 3 个 gpu 程 序"),
    ("他用python写程序", "他 用 python 写 程 序"),
]


def _ascii_ids(segmented: list[str]) -> list[str]:
    # rouge_score's default tokenizer keeps only [a-z0-9], so it would drop Chinese characters: map
    # every distinct hand-made token to an ASCII word. ROUGE depends only on token identity.
    vocab: dict[str, str] = {}
    return [" ".join(vocab.setdefault(tok, f"w{len(vocab)}") for tok in text.split()) for text in segmented]


def test_rouge_tokenize_equals_hand_segmentation():
    for text, segmented in ZH_HAND_SEGMENTED:
        assert rouge_tokenize(text) == segmented.split()


def test_rouge_chinese_equals_rouge_score_on_hand_segmented_text():
    (p1, s1), (r1, t1), (p2, s2), (r2, t2) = ZH_HAND_SEGMENTED
    ids = _ascii_ids([s1, t1, s2, t2])  # one vocabulary for all four texts
    expected = _default_rouge([(ids[0], ids[1]), (ids[2], ids[3])])
    assert 0 < expected["rouge2"] < expected["rouge1"] < 100
    assert rouge([p1, p2], [r1, r2]) == pytest.approx(expected)


def test_rouge_english_equals_rouge_score_default():
    expected = _default_rouge(list(zip(EN_PREDICTIONS, EN_REFERENCES, strict=True)))
    assert 0 < expected["rouge2"] < 100
    assert rouge(EN_PREDICTIONS, EN_REFERENCES) == pytest.approx(expected)


def test_rouge_whitespace_split_would_score_chinese_zero():
    prediction, reference = "今天天气很好", "今天天气不错"
    whitespace = RougeScorer(["rouge1"], tokenizer=SimpleNamespace(tokenize=str.split))
    # Whole sentences become single, different tokens: no overlap at all.
    assert whitespace.score(reference, prediction)["rouge1"].fmeasure == 0.0
    # Per character: 今 天 天 气 shared out of 6 tokens each -> F1 = 4/6.
    assert rouge([prediction], [reference])["rouge1"] == pytest.approx(100 * 4 / 6)


def test_rouge_multi_reference_takes_best():
    prediction = EN_PREDICTIONS[0]
    scores = [_default_rouge([(prediction, ref)]) for ref in (EN_REFERENCES[0], EN_SECOND_REFERENCES[0])]
    best = {name: max(s[name] for s in scores) for name in scores[0]}
    assert rouge([prediction], [[EN_REFERENCES[0], EN_SECOND_REFERENCES[0]]]) == pytest.approx(best)


def test_exact_match_strips_whitespace_and_accepts_any_reference():
    predictions = [" Paris\n", "london", "Berlin", "Rome"]
    references = ["Paris", "London", ["Bonn", " Berlin "], ["Madrid"]]
    # hits: "Paris" (after strip), "Berlin" (second reference); case matters for "london".
    assert exact_match(predictions, references) == 2 / 4


def test_perplexity():
    assert perplexity(2.0) == pytest.approx(math.exp(2.0))
    assert perplexity(0.0) == 1.0
    assert perplexity(1000.0) == math.inf  # math.exp(1000) would raise OverflowError
    assert perplexity(math.inf) == math.inf
    assert math.isnan(perplexity(math.nan))


def test_generation_metrics_combines_the_parts():
    result = generation_metrics(EN_PREDICTIONS, EN_REFERENCES)
    assert set(result) == {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match"}
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(EN_PREDICTIONS, [EN_REFERENCES]).score)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(EN_PREDICTIONS, [EN_REFERENCES]).score)
    assert result["rougeL"] == pytest.approx(
        _default_rouge(list(zip(EN_PREDICTIONS, EN_REFERENCES, strict=True)))["rougeL"]
    )
    assert result["exact_match"] == 0.0
    assert all(type(v) is float for v in result.values())
    assert generation_metrics(["a b c"], ["a b c"])["exact_match"] == 1.0
