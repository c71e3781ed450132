import pytest

from mg_data.errors import RowError
from mg_data.tasks import classify, embed, pairwise, pt, rerank, score, sft


def norm(module, row):
    warnings = []
    return module.normalize(row, warnings.append), warnings


def test_pt():
    assert norm(pt, {"text": "长颈鹿是世界上最高的动物。"})[0] == {"text": "长颈鹿是世界上最高的动物。"}
    with pytest.raises(RowError, match="missing field 'text'"):
        norm(pt, {"body": "x"})


def test_sft_reads_every_format(samples):
    for name, rows in samples.items():
        for row in rows:
            assert norm(sft, row)[0]["messages"][-1]["role"] == "assistant", name


def test_classify_labels_single_multi_and_regression():
    assert norm(classify, {"text": "我要退货", "label": "refund"})[0] == {
        "text": "我要退货",
        "label": "refund",
    }
    assert (
        norm(classify, {"prompt": "好闷啊，打开车窗", "response": "车窗控制"})[0]["label"] == "车窗控制"
    )  # the seed's layout
    assert norm(classify, {"text": "t", "labels": ["a", "b"]})[0]["label"] == ["a", "b"]
    assert norm(classify, {"text": "t", "label": 0.75})[0]["label"] == 0.75
    assert norm(classify, {"sentence": "s1", "sentence2": "s2", "label": 1})[0] == {
        "text": "s1",
        "text_pair": "s2",
        "label": 1,
    }
    for row, reason in [
        ({"text": "t"}, "missing field 'label'"),
        ({"text": "t", "label": True}, "label must be"),
        ({"text": "t", "label": []}, "label is an empty list"),
        ({"label": "a"}, "missing field 'text'"),
    ]:
        with pytest.raises(RowError, match=reason):
            norm(classify, row)


def test_pairwise_standard_and_choosen_warning():
    ex, warnings = norm(pairwise, {"prompt": "写一首诗", "choosen": "床前明月光", "rejected": "不会"})
    assert ex == {"prompt": "写一首诗", "chosen": "床前明月光", "rejected": "不会"}
    assert warnings == ["field 'choosen' is read as 'chosen' (please rename it)"]


def test_pairwise_conversational_with_implicit_prompt():
    q = {"role": "user", "content": "2+2?"}
    ex, _ = norm(
        pairwise,
        {
            "chosen": [q, {"role": "assistant", "content": "4"}],
            "rejected": [q, {"role": "assistant", "content": "5"}],
        },
    )
    assert ex == {
        "prompt": [q],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }


def test_pairwise_llamafactory_alpaca_and_sharegpt():
    ex, _ = norm(
        pairwise,
        {"instruction": "介绍北京", "input": "", "chosen": "北京是中国的首都。", "rejected": "不知道"},
    )
    assert ex["prompt"] == [{"role": "user", "content": "介绍北京"}]
    assert ex["chosen"] == [{"role": "assistant", "content": "北京是中国的首都。"}]
    ex, _ = norm(
        pairwise,
        {
            "conversations": [{"from": "human", "value": "hi"}],
            "chosen": {"from": "gpt", "value": "Hello!"},
            "rejected": {"from": "gpt", "value": "go away"},
        },
    )
    assert ex["prompt"] == [{"role": "user", "content": "hi"}]
    assert ex["rejected"] == [{"role": "assistant", "content": "go away"}]


def test_pairwise_errors():
    for row, reason in [
        ({"prompt": "p", "chosen": "a"}, "missing field 'rejected'"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "chosen and rejected are identical"),
        ({"prompt": "p", "chosen": "", "rejected": "r"}, "chosen is empty"),
        ({"prompt": "p", "chosen": "c", "rejected": 3}, "rejected must be a string"),
    ]:
        with pytest.raises(RowError, match=reason):
            norm(pairwise, row)


def test_embed_layouts():
    ours = {
        "query": "如何退货",
        "positive": "退货流程：订单页申请",
        "negative": "运费说明",
        "negative_2": "发票",
        "negative_1": "优惠券",
    }
    assert norm(embed, ours)[0] == {
        "query": "如何退货",
        "positives": ["退货流程：订单页申请"],
        "negatives": ["运费说明", "优惠券", "发票"],
    }
    flag = {"query": "q", "pos": ["p1", "p2"], "neg": ["n1"]}
    assert norm(embed, flag)[0] == {"query": "q", "positives": ["p1", "p2"], "negatives": ["n1"]}
    st = {"anchor": "a", "positive": "p", "negative_1": "n"}
    assert norm(embed, st)[0] == {"query": "a", "positives": ["p"], "negatives": ["n"]}
    swift = {
        "messages": [{"role": "user", "content": "q"}],
        "positive_messages": [[{"role": "user", "content": "p"}]],
        "negative_messages": [[{"role": "user", "content": "n1"}], [{"role": "user", "content": "n2"}]],
    }
    assert norm(embed, swift)[0] == {"query": "q", "positives": ["p"], "negatives": ["n1", "n2"]}
    assert norm(embed, {"query": "q", "positive": "p"})[0]["negatives"] == []  # in-batch negatives only
    for row, reason in [
        ({"query": "q"}, "missing field 'positive'"),
        ({"query": "q", "pos": []}, "pos is empty"),
        ({"query": "q", "positive": "p", "negative": ["n", ""]}, r"negative\[1\] is empty"),
    ]:
        with pytest.raises(RowError, match=reason):
            norm(embed, row)


def test_rerank_scores_and_negatives():
    row = {"query": "q", "pos": ["p"], "neg": ["n1", "n2"], "pos_scores": [0.9], "neg_scores": [0.2, 0.1]}
    assert norm(rerank, row)[0]["scores"] == [0.9, 0.2, 0.1]
    with pytest.raises(RowError, match="no negatives"):
        norm(rerank, {"query": "q", "positive": "p", "negatives": []})
    with pytest.raises(RowError, match="scores has 2 values for 3 documents"):
        norm(rerank, {"query": "q", "positive": "p", "negatives": ["a", "b"], "scores": [1, 0]})


def test_score_pairs():
    assert norm(score, {"sentence1": "一只猫", "sentence2": "a cat", "score": 4.5})[0] == {
        "text_1": "一只猫",
        "text_2": "a cat",
        "label": 4.5,
    }
    assert norm(score, {"text_1": "a", "text_2": "b", "label": 1})[0]["label"] == 1.0
    with pytest.raises(RowError, match="label must be a number, got a string"):
        norm(score, {"text_1": "a", "text_2": "b", "label": "high"})
    with pytest.raises(RowError, match="missing text pair"):
        norm(score, {"a": "x", "label": 1})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_row_errors_in_every_float_field(bad):
    """Rows built in Python (or read from Parquet) hold real NaN floats, not JSON literals."""
    with pytest.raises(RowError, match=f"^label must be a finite number, got {bad}$"):
        norm(score, {"text_1": "a", "text_2": "b", "label": bad})
    with pytest.raises(RowError, match=f"^score must be a finite number, got {bad}$"):
        norm(score, {"sentence1": "a", "sentence2": "b", "score": bad})
    with pytest.raises(RowError, match=f"^label must be a finite number, got {bad}$"):
        norm(classify, {"text": "a", "label": bad})
    with pytest.raises(RowError, match=rf"^neg_scores\[0\] must be a finite number, got {bad}$"):
        norm(rerank, {"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0], "neg_scores": [bad]})
    with pytest.raises(RowError, match=rf"^scores\[1\] must be a finite number, got {bad}$"):
        norm(rerank, {"query": "q", "positive": "p", "negatives": ["n"], "scores": [1, bad]})
