"""Packed rows keep their samples apart: a sample's logits, the loss and the gradients are those of the
samples run unpacked, on the tiny Qwen2 and Llama decoders and a tiny MoE, for every mask flavour."""

import pickle
import random

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    Qwen2MoeConfig,
    Qwen2MoeForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

from mg_heads.packing import IGNORE_INDEX, Sample, collate_packed, collate_padded, pack, split_long

PAD = 0
IMPLS = ["sdpa", "eager", "flex_attention"]
ISOLATED = 1e-4  # relative error of a packed sample's logits against the sample alone, fp32


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm()).item()


def make_sample(length: int, seed: int, prompt: int = 0) -> Sample:
    """Random token ids; the first `prompt` tokens are not trained on, as a chat prompt is not."""
    ids = random.Random(seed).choices(range(1, 300), k=length)
    return Sample(ids, [IGNORE_INDEX] * prompt + ids[prompt:])


# Row 0 holds the target after two other samples; row 1 is shorter, so the batch has padding.
ROWS = [
    [make_sample(7, 1, prompt=3), make_sample(5, 2), make_sample(9, 3, prompt=4)],
    [make_sample(11, 4, 6)],
]
TARGET = ROWS[0][2]


def load(model_dir, attn_implementation: str):
    return AutoModelForCausalLM.from_pretrained(
        model_dir, attn_implementation=attn_implementation, dtype=torch.float32
    ).eval()


def logits_alone(model, sample: Sample) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([sample.input_ids])).logits[0]


def packed_logits_error(model, batch: dict) -> float:
    """Worst relative error of the logits of the packed samples (rows of ROWS) against each alone."""
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    worst = 0.0
    for b, row in enumerate(ROWS):
        start = 0
        for sample in row:
            end = start + len(sample.input_ids)
            worst = max(worst, relative_error(logits[b, start:end], logits_alone(model, sample)))
            start = end
    return worst


@pytest.fixture(params=["qwen2", "llama"])
def decoder_dir(request, tiny_decoder_dir, tiny_llama_dir):
    return {"qwen2": tiny_decoder_dir, "llama": tiny_llama_dir}[request.param]


@pytest.mark.parametrize("impl", IMPLS)
def test_packed_sample_has_the_logits_it_has_alone(decoder_dir, impl):
    model = load(decoder_dir, impl)
    batch = collate_packed(ROWS, pad_token_id=PAD, attn_implementation=impl)
    assert packed_logits_error(model, batch) < ISOLATED


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_restarted_positions_alone_do_not_isolate(tiny_decoder_dir, impl):
    """The transformers-5 fact the explicit mask exists for: with a 2D mask, or with the cache on (the
    default), restarted position_ids leave the packed samples attending to each other."""
    model = load(tiny_decoder_dir, impl)
    batch = collate_packed(ROWS[:1], pad_token_id=PAD, attn_implementation=impl)
    ids, positions = batch["input_ids"], batch["position_ids"]
    alone = logits_alone(model, TARGET)
    with torch.no_grad():
        two_d = model(input_ids=ids, position_ids=positions, attention_mask=torch.ones_like(ids)).logits
        no_mask = model(input_ids=ids, position_ids=positions).logits
        no_mask_no_cache = model(input_ids=ids, position_ids=positions, use_cache=False).logits
    assert relative_error(two_d[0, 12:], alone) > 1e-2
    assert relative_error(no_mask[0, 12:], alone) > 1e-2
    # Without mask and cache transformers derives the document mask from position_ids, which is what the
    # flat flash-attention batch relies on.
    assert relative_error(no_mask_no_cache[0, 12:], alone) < ISOLATED


def test_bool_mask_leaks_under_eager(tiny_decoder_dir):
    """Why eager gets a float mask: eager attention adds the mask to the scores."""
    model = load(tiny_decoder_dir, "eager")
    batch = collate_packed(ROWS, pad_token_id=PAD, attn_implementation="sdpa")
    assert packed_logits_error(model, batch) > 1e-2


def all_samples():
    return [sample for row in ROWS for sample in row]


@pytest.mark.parametrize("impl", IMPLS)
def test_packed_loss_equals_unpacked_loss(decoder_dir, impl):
    model = load(decoder_dir, impl)
    packed = collate_packed(ROWS, pad_token_id=PAD, attn_implementation=impl)
    padded = collate_padded(all_samples(), pad_token_id=PAD)
    with torch.no_grad():
        packed_loss, padded_loss = model(**packed).loss, model(**padded).loss
    assert abs(packed_loss - padded_loss) / padded_loss < 1e-5
    if impl != "flex_attention":  # (flex would compile once more for the same point)
        with torch.no_grad():
            leaked = model(**{**packed, "attention_mask": torch.ones_like(packed["input_ids"])}).loss
        assert abs(leaked - padded_loss) / padded_loss > 1e-4  # the comparison can tell a leak apart


def test_flat_flash_batch_is_one_row_whose_positions_isolate(tiny_decoder_dir):
    """flash_attention_2/3 cannot run here; the flat batch is checked through sdpa, whose mask transformers
    derives from the same restarting position_ids when no mask and no cache are given."""
    batch = collate_packed(ROWS, pad_token_id=PAD, attn_implementation="flash_attention_2")
    total = sum(len(s.input_ids) for s in all_samples())
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert batch["input_ids"].shape == batch["labels"].shape == batch["position_ids"].shape == (1, total)
    assert (
        collate_packed(ROWS, pad_token_id=PAD, attn_implementation="flash_attention_3").keys() == batch.keys()
    )

    model = load(tiny_decoder_dir, "sdpa")
    padded = collate_padded(all_samples(), pad_token_id=PAD)
    with torch.no_grad():
        out = model(**batch, use_cache=False)
        padded_loss = model(**padded).loss
    assert relative_error(out.logits[0, 12:21], logits_alone(model, TARGET)) < ISOLATED
    assert abs(out.loss - padded_loss) / padded_loss < 1e-5


def test_labels_positions_and_padding():
    batch = collate_packed(ROWS, pad_token_id=PAD, attn_implementation="sdpa")
    first, second, target = ROWS[0]
    row0 = batch["labels"][0].tolist()
    # A sample's own labels, except the first token of every sample after the first in its row.
    assert row0[:7] == first.labels
    assert row0[7:12] == [IGNORE_INDEX] + second.labels[1:]
    assert row0[12:21] == [IGNORE_INDEX] + target.labels[1:]
    assert batch["position_ids"][0].tolist() == [*range(7), *range(5), *range(9)]
    assert batch["input_ids"][1, 11:].tolist() == [PAD] * 10
    assert batch["labels"][1, 11:].tolist() == [IGNORE_INDEX] * 10
    mask = batch["attention_mask"]
    assert mask.shape == (2, 1, 21, 21) and mask.dtype == torch.bool
    # Padding positions see themselves only, and nothing real sees them.
    assert torch.equal(mask[1, 0, 11:, 11:], torch.eye(10, dtype=torch.bool))
    assert not mask[1, 0, :11, 11:].any() and not mask[1, 0, 11:, :11].any()


def test_collate_padded_masks_and_labels():
    batch = collate_padded([make_sample(3, 1), make_sample(5, 2, prompt=2)], pad_token_id=PAD)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"][0, 3:].tolist() == [IGNORE_INDEX] * 2
    assert batch["labels"][1, :2].tolist() == [IGNORE_INDEX] * 2
    assert batch["input_ids"][0, 3:].tolist() == [PAD] * 2


def test_unknown_attn_implementation_names_the_supported_ones():
    with pytest.raises(ValueError, match="sdpa, eager, flex_attention, flash_attention_2, flash_attention_3"):
        collate_packed(ROWS, pad_token_id=PAD, attn_implementation="paged_attention")


def test_sample_needs_a_label_per_token():
    with pytest.raises(ValueError, match="as many labels as input_ids"):
        Sample([1, 2, 3], [1, 2])


def test_flex_block_mask_survives_pickling(tiny_decoder_dir):
    """A DataLoader worker pickles the batch; a lambda mask_mod would not survive."""
    batch = pickle.loads(
        pickle.dumps(collate_packed(ROWS, pad_token_id=PAD, attn_implementation="flex_attention"))
    )
    assert packed_logits_error(load(tiny_decoder_dir, "flex_attention"), batch) < ISOLATED


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_gradients_equal_unpacked(decoder_dir, impl):
    model = load(decoder_dir, impl)

    def gradients(batch):
        model.zero_grad()
        model(**batch).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    packed = gradients(collate_packed(ROWS, pad_token_id=PAD, attn_implementation=impl))
    padded = gradients(collate_padded(all_samples(), pad_token_id=PAD))
    for name, grad in padded.items():
        assert relative_error(packed[name], grad) < 1e-4, name


def tiny_moe(kind: str):
    size = dict(
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        moe_intermediate_size=64,
        num_experts=2,
        num_experts_per_tok=1,
    )
    torch.manual_seed(0)
    if kind == "qwen2_moe":
        config = Qwen2MoeConfig(**size, shared_expert_intermediate_size=64)
        return Qwen2MoeForCausalLM._from_config(config, attn_implementation="sdpa").eval()
    return Qwen3MoeForCausalLM._from_config(Qwen3MoeConfig(**size), attn_implementation="sdpa").eval()


@pytest.mark.parametrize("kind", ["qwen2_moe", "qwen3_moe"])
def test_moe_packed_sample_has_the_logits_it_has_alone(kind):
    """The router is per token, so an isolated packed sample routes as it does alone."""
    model = tiny_moe(kind)
    batch = collate_packed(ROWS, pad_token_id=PAD, attn_implementation="sdpa")
    assert packed_logits_error(model, batch) < ISOLATED


def sft_like_lengths(n: int, seed: int = 0) -> list[int]:
    """Lognormal around 450 tokens, clipped to 32..2048, like the SFT data in shared/gpu."""
    rng = random.Random(seed)
    return [min(2048, max(32, int(rng.lognormvariate(6.1, 0.9)))) for _ in range(n)]


def test_pack_fills_rows_and_places_every_sample_once():
    lengths = sft_like_lengths(2000)
    rows = pack(lengths, 2048)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    totals = [sum(lengths[i] for i in row) for row in rows]
    assert max(totals) <= 2048
    assert sum(lengths) / (len(rows) * 2048) > 0.97
    assert pack(lengths, 2048) == rows


def test_pack_is_first_fit_decreasing():
    # 5 and 4 open rows; 3 fits in neither (room 1 and 2) and opens a third; 2 goes to the first row with
    # room (the 4's), ties by index: the first 1 fills the 5's row, the second the 3's.
    assert pack([1, 4, 2, 5, 3, 1], 6) == [[3, 0], [1, 2], [4, 5]]
    assert pack([], 8) == []


@pytest.mark.parametrize("lengths", [[3, 9], [3, 0]])
def test_pack_rejects_a_sample_that_cannot_fit(lengths):
    with pytest.raises(ValueError, match="sample 1 has length"):
        pack(lengths, 8)


def test_split_long_chunks_consecutively():
    sample = make_sample(10, 5, prompt=2)
    chunks = split_long(sample, 4)
    assert [len(c.input_ids) for c in chunks] == [4, 4, 2]
    assert sum((c.input_ids for c in chunks), []) == sample.input_ids
    assert sum((c.labels for c in chunks), []) == sample.labels
    assert split_long(sample, 10) == [sample]
