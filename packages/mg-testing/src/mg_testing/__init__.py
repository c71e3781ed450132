"""Offline models for test suites: tiny random models with real tokenizers, plus MiniLM and SmolLM2.

Nothing here imports torch at import time: torch-free packages use the tokenizers, and the pytest plugin
is loaded by every suite.
"""

from mg_testing.cache import cache_root, cached_build
from mg_testing.cached import chatml_tokenizer_dir, tiny_decoder_dir, tiny_encoder_dir
from mg_testing.real_models import minilm_dir, smollm2_dir
from mg_testing.tiny_models import build_tiny_decoder, build_tiny_encoder
from mg_testing.tokenizers import build_chatml_tokenizer, build_wordpiece_tokenizer

__version__ = "0.1.0"

__all__ = [
    "build_chatml_tokenizer",
    "build_tiny_decoder",
    "build_tiny_encoder",
    "build_wordpiece_tokenizer",
    "cache_root",
    "cached_build",
    "chatml_tokenizer_dir",
    "minilm_dir",
    "smollm2_dir",
    "tiny_decoder_dir",
    "tiny_encoder_dir",
]
