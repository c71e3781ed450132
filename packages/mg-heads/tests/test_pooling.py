import pytest
import torch
from transformers import BertConfig, LlamaConfig, Qwen2Config

from mg_heads.pooling import default_pooling, last_token_index, pool

HIDDEN = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)


def test_last_right_padding():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert last_token_index(mask).tolist() == [2, 0]
    torch.testing.assert_close(pool(HIDDEN, mask, "last"), torch.stack([HIDDEN[0, 2], HIDDEN[1, 0]]))


def test_last_left_padding():
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 1]])
    torch.testing.assert_close(pool(HIDDEN, mask, "last"), torch.stack([HIDDEN[0, 3], HIDDEN[1, 3]]))


def test_last_ignores_token_ids_so_pad_equal_to_eos_is_fine():
    # Row 0 really ends with eos (== pad id 7) and is padded with it: a pad-id search would stop at
    # position 1; the mask says position 2 is real.
    input_ids = torch.tensor([[5, 6, 7, 7], [5, 7, 7, 7]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert input_ids.shape == mask.shape
    assert last_token_index(mask).tolist() == [2, 1]


def test_cls_reads_position_zero_and_needs_right_padding():
    torch.testing.assert_close(pool(HIDDEN, torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]), "cls"), HIDDEN[:, 0])
    with pytest.raises(ValueError, match="right"):
        pool(HIDDEN, torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]), "cls")


def test_mean_over_real_tokens_only():
    mask = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])
    expected = torch.stack([HIDDEN[0, :2].mean(0), HIDDEN[1, 1:].mean(0)])
    torch.testing.assert_close(pool(HIDDEN, mask, "mean"), expected)


def test_mean_of_an_all_padding_row_is_zero_not_nan():
    out = pool(HIDDEN, torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]]), "mean")
    assert out[0].eq(0).all()


def test_unknown_mode():
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool(HIDDEN, torch.ones(2, 4), "max")


def test_default_pooling_per_layout():
    assert default_pooling(BertConfig()) == "mean"
    assert default_pooling(Qwen2Config()) == "last"
    assert default_pooling(LlamaConfig()) == "last"
