import pytest
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from mg_testing.tiny_models import build_tiny_decoder, build_tiny_encoder

# Needs the `models` extra; without it (a torch-free install) these tests are skipped, not failed.
torch = pytest.importorskip("torch")

DECODERS = {"tiny_decoder_dir": "Qwen2ForCausalLM", "tiny_llama_dir": "LlamaForCausalLM"}
TEXTS = ["您好，我的订单在哪里？", "Where is my order?"]


@pytest.mark.parametrize("fixture_name", DECODERS)
def test_decoder_loads_as_causal_lm_and_learns_from_a_batch(request, fixture_name):
    folder = request.getfixturevalue(fixture_name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == DECODERS[fixture_name]
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (128, 2, 4)
    assert config.num_key_value_heads == 2
    assert config.vocab_size == len(tokenizer)
    assert config.tie_word_embeddings
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert config.pad_token_id == tokenizer.pad_token_id
    assert config.eos_token_id == model.generation_config.eos_token_id == tokenizer.eos_token_id

    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    output = model(**batch, labels=labels)
    assert output.logits.shape == (2, batch["input_ids"].shape[1], len(tokenizer))
    # Random init over ~1.5k tokens: the loss is near ln(1536) = 7.3.
    assert 6.0 < output.loss.item() < 9.0
    output.loss.backward()
    assert model.get_input_embeddings().weight.grad is not None


@pytest.mark.parametrize("fixture_name", DECODERS)
def test_decoder_generates_from_a_chat_prompt(request, fixture_name):
    folder = request.getfixturevalue(fixture_name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "你好"}],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    generated = model.generate(**prompt, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert generated.shape == (1, prompt["input_ids"].shape[1] + 4)


@pytest.mark.parametrize("fixture_name", DECODERS)
def test_decoder_loads_as_sequence_classifier(request, fixture_name):
    folder = request.getfixturevalue(fixture_name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    output = model(**batch, labels=torch.tensor([0, 2]))
    assert output.logits.shape == (2, 3)
    assert torch.isfinite(output.loss)


def test_encoder_loads_as_base_model_and_sequence_classifier(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")

    encoder = AutoModel.from_pretrained(tiny_encoder_dir)
    assert type(encoder).__name__ == "BertModel"
    hidden = encoder(**batch)
    assert hidden.last_hidden_state.shape == (2, batch["input_ids"].shape[1], 128)
    assert hidden.pooler_output.shape == (2, 128)

    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_encoder_dir, num_labels=3)
    # The checkpoint's encoder weights are loaded, not re-initialised: only the classifier is new.
    assert torch.equal(
        classifier.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight
    )
    assert classifier(**batch).logits.shape == (2, 3)


def test_encoder_tokenizer_pairs_for_cross_encoders(tiny_encoder_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    batch = tokenizer(["退货"], ["how do I return an item"], return_tensors="pt")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_encoder_dir, num_labels=1)
    assert model(**batch).logits.shape == (1, 1)


def test_builds_are_deterministic_and_leave_the_callers_rng_alone(tmp_path):
    torch.manual_seed(1234)
    expected_next = torch.rand(1)
    torch.manual_seed(1234)
    first = build_tiny_decoder(tmp_path / "first", arch="llama")
    second = build_tiny_decoder(tmp_path / "second", arch="llama")
    assert torch.equal(torch.rand(1), expected_next)
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()

    encoders = [build_tiny_encoder(tmp_path / f"encoder-{i}") for i in range(2)]
    assert (encoders[0] / "model.safetensors").read_bytes() == (
        encoders[1] / "model.safetensors"
    ).read_bytes()


def test_unknown_arch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="arch must be one of"):
        build_tiny_decoder(tmp_path, arch="gpt2")
