"""The tiny tokenizer and models, built once per machine into the mg-testing cache and reused."""

from functools import partial
from pathlib import Path

from mg_testing.cache import cached_build
from mg_testing.tiny_models import DECODER_CLASSES, build_tiny_decoder, build_tiny_encoder
from mg_testing.tokenizers import build_chatml_tokenizer
from mg_testing.versions import tiny_key


def chatml_tokenizer_dir() -> Path:
    """Folder of the ChatML BPE tokenizer (AutoTokenizer loads it). Needs no torch."""
    return cached_build(tiny_key("chatml-tokenizer"), build_chatml_tokenizer)


def tiny_decoder_dir(arch: str = "qwen2") -> Path:
    """Folder of the tiny random decoder, "qwen2", "llama" or "qwen3_moe", with its ChatML tokenizer."""
    if arch not in DECODER_CLASSES:
        raise ValueError(f"arch must be one of {sorted(DECODER_CLASSES)}, not {arch!r}")
    return cached_build(tiny_key(f"tiny-{arch}"), partial(build_tiny_decoder, arch=arch))


def tiny_encoder_dir() -> Path:
    """Folder of the tiny random BERT encoder with its WordPiece tokenizer."""
    return cached_build(tiny_key("tiny-bert"), build_tiny_encoder)
