"""metrics_style llamafactory checked against LLaMA-Factory's ComputeSimilarity steps run here with the
libraries it calls (jieba, rouge_chinese, nltk), not against stored numbers."""

import logging
import sys
import warnings

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from mg_eval.metrics import (
    MissingMetricsExtra,
    check_metrics_style,
    generation_metrics,
    llamafactory_metrics,
)

# jieba's and rouge-chinese's regexes are not raw strings: Python warns compiling them.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import jieba
    from rouge_chinese import Rouge

jieba.setLogLevel(logging.WARNING)

ZH = (
    [
        "今天天气很好，我们去公园散步。",
        "他喜欢看书和写字。",
        "机器学习是人工智能的一个分支。",
        "好的好的好的。",
    ],
    ["今天天气不错，我们去公园走走吧。", "他喜欢读书和写字。", "机器学习是人工智能的重要分支。", "好的。"],
)
EN = (
    [
        "The cat sat on the mat.",
        "There is a dog in the garden, barking loudly.",
        "He reads the newspaper every morning.",
        "",  # an empty prediction: rouge 0 by LLaMA-Factory's guard, bleu 0 from nltk
    ],
    [
        "The cat is sitting on the mat.",
        "A dog is barking loudly in the garden.",
        "Every morning he reads the newspaper.",
        "The answer is 42.",
    ],
)
# Mixed scripts, and the texts where rouge-chinese's sentence cut shows in the words it counts (blank lines
# between paragraphs, "?", six dots, closing quotes): a version that split the words on whitespace alone
# differs from LLaMA-Factory here by up to 25 points (measured).
MIXED = (
    [
        "我用Python写了一个web server。",
        "第一步：安装。\n\n第二步：运行 `mg-train config.yaml`！",
        "你好？  \n  是的......“对”。",
        "Python......你是 Python.......去",
        "",
    ],
    [
        "我用 Python 写了一个 HTTP 服务器。",
        "第一步：安装依赖。\n\n第二步：运行命令。",
        "你好?是的......吗",
        "去.",
        "",  # both empty
    ],
)
SETS = {"zh": ZH, "en": EN, "mixed": MIXED}


def llamafactory_reference(predictions, labels):
    """ComputeSimilarity's loop over decoded pairs, step by step, with the libraries it uses."""
    scores = {"rouge-1": [], "rouge-2": [], "rouge-l": [], "bleu-4": []}
    for pred, label in zip(predictions, labels, strict=True):
        hypothesis = list(jieba.cut(pred))
        reference = list(jieba.cut(label))
        if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
            result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
        else:
            result = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
        for key, value in result.items():
            scores[key].append(round(value["f"] * 100, 4))
        bleu = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
        scores["bleu-4"].append(round(bleu * 100, 4))
    return {key: sum(values) / len(values) for key, values in scores.items()}


@pytest.mark.parametrize("name", SETS)
def test_equals_llamafactory_on_each_pair_and_on_the_set(name):
    predictions, references = SETS[name]
    for prediction, reference in zip(predictions, references, strict=True):
        expected = llamafactory_reference([prediction], [reference])
        assert llamafactory_metrics([prediction], [reference]) == pytest.approx(expected, abs=1e-6), (
            prediction,
            reference,
        )
    ours = generation_metrics(predictions, references, style="llamafactory")
    assert list(ours) == ["bleu-4", "rouge-1", "rouge-2", "rouge-l"]
    assert ours == pytest.approx(llamafactory_reference(predictions, references), abs=1e-6)


def test_empty_prediction_scores_zero():
    assert llamafactory_metrics([""], ["The answer is 42."]) == {
        "bleu-4": 0.0,
        "rouge-1": 0.0,
        "rouge-2": 0.0,
        "rouge-l": 0.0,
    }


def test_a_perfect_answer_scores_100():
    scores = llamafactory_metrics(["机器学习是人工智能的一个分支。"], ["机器学习是人工智能的一个分支。"])
    assert scores == pytest.approx(dict.fromkeys(scores, 100.0), abs=1e-4)  # F = 2PR/(P+R+1e-8)


@pytest.mark.parametrize("name", SETS)
def test_the_two_styles_differ_on_the_same_pairs(name):
    predictions, references = SETS[name]
    ours = generation_metrics(predictions, references)  # the default, sacrebleu
    theirs = generation_metrics(predictions, references, style="llamafactory")
    gaps = {
        "bleu": abs(ours["bleu"] - theirs["bleu-4"]),
        "rouge1": abs(ours["rouge1"] - theirs["rouge-1"]),
        "rouge2": abs(ours["rouge2"] - theirs["rouge-2"]),
        "rougeL": abs(ours["rougeL"] - theirs["rouge-l"]),
    }
    assert max(gaps.values()) > 5.0, gaps  # points on 0-100: the option changes what is reported


def test_default_style_is_sacrebleu():
    predictions, references = EN
    assert generation_metrics(predictions, references) == generation_metrics(
        predictions, references, style="sacrebleu"
    )


def test_one_reference_per_prediction():
    assert llamafactory_metrics(["好的。"], [["好的。"]])["rouge-1"] == pytest.approx(100.0, abs=1e-4)
    with pytest.raises(ValueError, match="one reference per prediction; prediction 0 has 2"):
        llamafactory_metrics(["好的。"], [["好的。", "行。"]])
    with pytest.raises(ValueError, match="differ in length"):
        llamafactory_metrics(["a", "b"], ["a"])


def test_unknown_style():
    with pytest.raises(
        ValueError, match="unknown metrics style 'bleurt'; use one of: sacrebleu, llamafactory"
    ):
        generation_metrics(["a"], ["a"], style="bleurt")  # type: ignore[arg-type]


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jieba", None)  # what `import jieba` meets uninstalled
    message = (
        "metrics_style llamafactory needs the llamafactory-metrics extra (jieba is missing): "
        "pip install 'mg-eval[llamafactory-metrics]'"
    )
    with pytest.raises(MissingMetricsExtra) as raised:
        check_metrics_style("llamafactory")
    assert str(raised.value) == message
    with pytest.raises(MissingMetricsExtra):
        generation_metrics(["a"], ["a"], style="llamafactory")
    check_metrics_style("sacrebleu")  # the default style needs no extra
