import pytest
import torch
from transformers import AutoTokenizer

from mg_heads.tokenize import encode_texts, ensure_pad_token, rows_ending_with_pad


@pytest.fixture(scope="module")
def decoder_tokenizer(tiny_decoder_dir):
    return AutoTokenizer.from_pretrained(tiny_decoder_dir)


def test_no_eos_is_appended(decoder_tokenizer):
    batch = encode_texts(decoder_tokenizer, ["hello world"], max_length=32)
    ids = batch["input_ids"][0].tolist()
    assert ids == decoder_tokenizer("hello world")["input_ids"]
    assert decoder_tokenizer.eos_token_id not in ids


def test_truncates_to_max_length(decoder_tokenizer):
    batch = encode_texts(decoder_tokenizer, ["word " * 100, "short"], max_length=8)
    assert batch["input_ids"].shape == (2, 8)


def test_padding_side(decoder_tokenizer):
    left = encode_texts(decoder_tokenizer, ["a long text here", "hi"], max_length=32, padding_side="left")
    right = encode_texts(decoder_tokenizer, ["a long text here", "hi"], max_length=32, padding_side="right")
    assert left["attention_mask"][1, -1] == 1 and left["attention_mask"][1, 0] == 0
    assert right["attention_mask"][1, 0] == 1 and right["attention_mask"][1, -1] == 0
    # The tokenizer's own side is left alone.
    assert decoder_tokenizer.padding_side == "right"


def test_pairs_use_the_tokenizer_text_pair(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    batch = encode_texts(tokenizer, ["a query"], ["a document"], max_length=32)
    assert batch["input_ids"][0].tolist() == tokenizer("a query", "a document")["input_ids"]
    assert batch["token_type_ids"][0].max() == 1
    with pytest.raises(ValueError, match="pairs"):
        encode_texts(tokenizer, ["a", "b"], ["c"], max_length=8)


def test_seq_cls_refuses_rows_that_end_with_the_pad_token(decoder_tokenizer):
    tokenizer = AutoTokenizer.from_pretrained(decoder_tokenizer.name_or_path)
    tokenizer.pad_token = tokenizer.eos_token  # pad == eos
    ok = encode_texts(tokenizer, ["hello", "a longer text"], max_length=16, seq_cls=True)
    assert rows_ending_with_pad(ok["input_ids"], ok["attention_mask"], tokenizer.pad_token_id) == []
    with pytest.raises(ValueError, match=r"rows \[1\] end with the pad token"):
        encode_texts(tokenizer, ["hello", "hello<|im_end|>"], max_length=16, seq_cls=True)


def test_ensure_pad_token(decoder_tokenizer):
    tokenizer = AutoTokenizer.from_pretrained(decoder_tokenizer.name_or_path)
    assert ensure_pad_token(tokenizer) is False
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match="ensure_pad_token"):
        encode_texts(tokenizer, ["x"], max_length=4)
    assert ensure_pad_token(tokenizer) is True
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert isinstance(encode_texts(tokenizer, ["x", "y z"], max_length=4)["input_ids"], torch.Tensor)
