import pytest
from transformers import AutoTokenizer

from mg_testing.tokenizers import build_wordpiece_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return AutoTokenizer.from_pretrained(build_wordpiece_tokenizer(tmp_path_factory.mktemp("wordpiece")))


def test_bert_special_tokens(tokenizer):
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (tokenizer.pad_token, tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token) == (
        "[PAD]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    )


def test_chinese_is_split_per_character(tokenizer):
    assert tokenizer.tokenize("我想退货，谢谢") == ["我", "想", "退", "货", "，", "谢", "谢"]


def test_lowercases_and_splits_unknown_words_into_pieces(tokenizer):
    assert tokenizer.tokenize("REFUND Order") == ["refund", "order"]
    pieces = tokenizer.tokenize("unshippable")
    assert len(pieces) > 1
    assert all(piece.startswith("##") for piece in pieces[1:])
    assert "[UNK]" not in pieces


def test_pairs_get_cls_sep_and_token_types(tokenizer):
    encoded = tokenizer("我的订单", "order status")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens == ["[CLS]", "我", "的", "订", "单", "[SEP]", "order", "status", "[SEP]"]
    assert encoded["token_type_ids"] == [0, 0, 0, 0, 0, 0, 1, 1, 1]
