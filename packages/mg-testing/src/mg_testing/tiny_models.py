"""Tiny randomly initialised models saved with real tokenizers: a Qwen2 or Llama decoder and a BERT encoder.

They are not meant to say anything sensible; they are meant to load through the Auto classes, run every
code path (forward, loss, generate, heads) and build in seconds. torch is imported inside the builders so
that this module imports without it.
"""

from pathlib import Path

from mg_testing.tokenizers import (
    DECODER_MAX_LENGTH,
    ENCODER_MAX_LENGTH,
    ENDOFTEXT,
    build_chatml_tokenizer,
    build_wordpiece_tokenizer,
)

# arch -> (config class, model class) in transformers.
DECODER_CLASSES = {
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
    "llama": ("LlamaConfig", "LlamaForCausalLM"),
    # A mixture of experts in Qwen3-MoE's shape: a router per layer, 4 experts, 2 per token.
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM"),
}
# What the MoE shape adds to the tiny size (head_dim: Qwen3 configs default to 128, not hidden / heads).
MOE_SIZE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64, head_dim=32)
SEED = 0

# Small enough to build and run in milliseconds, but with grouped-query attention (2 kv heads for 4 heads)
# and more than one layer, so code that depends on those shapes is exercised. Head size 32: vLLM's CPU
# attention kernels support head sizes 32, 64, 80, ... but not 16 ("Unsupported CPU attention
# configuration: head_dim=16"), and these models are served by real vLLM in tests.
TINY_DECODER_SIZE = dict(
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=256,
    max_position_embeddings=DECODER_MAX_LENGTH,
    tie_word_embeddings=True,
)
TINY_ENCODER_SIZE = dict(
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=256,
    max_position_embeddings=ENCODER_MAX_LENGTH,
    type_vocab_size=2,
)


def build_tiny_decoder(out_dir: str | Path, arch: str = "qwen2") -> Path:
    """Save a random Qwen2ForCausalLM, LlamaForCausalLM or Qwen3MoeForCausalLM with the ChatML tokenizer in
    `out_dir`.

    Same seed, same weights: two builds with one torch version give identical files.
    """
    import torch
    import transformers

    if arch not in DECODER_CLASSES:
        raise ValueError(f"arch must be one of {sorted(DECODER_CLASSES)}, not {arch!r}")
    config_class, model_class = (getattr(transformers, name) for name in DECODER_CLASSES[arch])

    out_dir = Path(out_dir)
    build_chatml_tokenizer(out_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir)
    special_ids = dict(
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        # Like Qwen2: the tokenizer adds no bos, and the config names <|endoftext|>.
        bos_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
    )
    size = {**TINY_DECODER_SIZE, **(MOE_SIZE if arch.endswith("_moe") else {})}
    config = config_class(vocab_size=len(tokenizer), **size, **special_ids)
    # fork_rng: seeding must not change the random stream of the test that asked for the build.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = model_class(config)
    model.generation_config = transformers.GenerationConfig(**special_ids)
    model.save_pretrained(out_dir)
    return out_dir


def build_tiny_encoder(out_dir: str | Path) -> Path:
    """Save a random BertModel (pooler included) with the WordPiece tokenizer in `out_dir`.

    A bare BertModel loads without missing weights through AutoModel, and through
    AutoModelForSequenceClassification with only the new classifier initialised.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    out_dir = Path(out_dir)
    build_wordpiece_tokenizer(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **TINY_ENCODER_SIZE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = BertModel(config)
    model.save_pretrained(out_dir)
    return out_dir
