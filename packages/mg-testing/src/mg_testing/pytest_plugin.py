"""pytest plugin (entry point `mg_testing`): session fixtures that hand out offline model folders.

Every suite in the workspace loads this plugin once mg-testing is installed, torch-free suites too, so it
imports nothing heavy: each fixture imports what it needs when it is first used.
"""

import os
from pathlib import Path

import pytest

from mg_testing import cached, real_models


def go_offline() -> None:
    # Tests must never reach a model hub; these also stop transformers from asking it about local folders.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def pytest_load_initial_conftests(early_config, parser, args) -> None:
    # Runs before conftest.py files are imported; huggingface_hub reads HF_HUB_OFFLINE when it is imported,
    # so a conftest that imports transformers at its top must already see it.
    go_offline()


def pytest_configure(config) -> None:
    go_offline()


@pytest.fixture(scope="session")
def chatml_tokenizer_dir() -> Path:
    """ChatML byte-level BPE tokenizer folder (English + Chinese, assistant-mask chat template)."""
    return cached.chatml_tokenizer_dir()


@pytest.fixture(scope="session")
def tiny_decoder_dir() -> Path:
    """Tiny random Qwen2ForCausalLM folder with the ChatML tokenizer."""
    return cached.tiny_decoder_dir("qwen2")


@pytest.fixture(scope="session")
def tiny_llama_dir() -> Path:
    """Tiny random LlamaForCausalLM folder with the ChatML tokenizer."""
    return cached.tiny_decoder_dir("llama")


@pytest.fixture(scope="session")
def tiny_moe_dir() -> Path:
    """Tiny random Qwen3MoeForCausalLM folder (4 experts, 2 per token) with the ChatML tokenizer."""
    return cached.tiny_decoder_dir("qwen3_moe")


@pytest.fixture(scope="session")
def tiny_encoder_dir() -> Path:
    """Tiny random BertModel folder with a WordPiece tokenizer."""
    return cached.tiny_encoder_dir()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 in sentence-transformers layout (384-dim, normalized embeddings)."""
    return real_models.minilm_dir()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as an fp32 transformers folder (converted from GGUF once per machine)."""
    return real_models.smollm2_dir()
