import pytest
import torch
from conftest import PAIRS, TEXTS, assert_close
from peft import PeftModel
from sentence_transformers import SentenceTransformer
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mg_heads.classification import load_sequence_classifier
from mg_heads.embedding import EmbeddingModel
from mg_heads.export import export
from mg_heads.lora import apply_lora, is_lora, merge
from mg_heads.losses import cross_entropy, info_nce
from mg_heads.tokenize import encode_texts


def snapshot(model, *needles):
    return {n: p.detach().clone() for n, p in model.named_parameters() if any(s in n for s in needles)}


def changed(before, model):
    after = dict(model.named_parameters())
    return {n for n, p in before.items() if not torch.equal(p, after[n])}


def test_lora_classifier_trains_head_and_adapters_and_exports_merged(tiny_decoder_dir, tmp_path, train):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    model = load_sequence_classifier(
        tiny_decoder_dir, num_labels=3, problem_type="single_label_classification"
    )
    peft_model = apply_lora(model, "classify", r=4, alpha=8)
    assert isinstance(peft_model, PeftModel)
    # The head is trained in full (modules_to_save), the rest through adapters; no base weight moves.
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert any("score.modules_to_save" in n for n in trainable) and any("lora_B" in n for n in trainable)
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)

    before = snapshot(peft_model, "lora_B", "modules_to_save", "q_proj.base_layer")
    batch = encode_texts(tokenizer, TEXTS, max_length=64, seq_cls=True)
    train(peft_model, lambda m: cross_entropy(m(**batch).logits, torch.tensor([0, 1, 2, 1])), lr=1e-2)
    moved = changed(before, peft_model)
    assert any("lora_B" in n for n in moved) and any("modules_to_save" in n for n in moved)
    assert not any("base_layer" in n for n in moved)
    with torch.no_grad():
        ours = peft_model(**batch).logits

    out = export(peft_model, tokenizer, tmp_path / "model", task="classify", max_length=64).path
    assert is_lora(peft_model)  # export merged a copy; training can go on
    assert not [p.name for p in out.iterdir() if p.name.startswith("adapter")]
    reloaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        assert_close(reloaded(**batch).logits, ours)
    merged = merge(peft_model)
    assert type(merged).__name__ == "Qwen2ForSequenceClassification"


def test_lora_embedding_model_exports_merged(tiny_decoder_dir, tmp_path, train):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    model = apply_lora(
        EmbeddingModel.from_pretrained(tiny_decoder_dir), "embed", r=4, target_modules="all-linear"
    )
    assert isinstance(model, EmbeddingModel) and isinstance(model.backbone, PeftModel)
    q, p = (encode_texts(tokenizer, t, max_length=64) for t in (TEXTS, PAIRS))
    train(model, lambda m: info_nce(m(**q), m(**p)), lr=1e-2)
    with torch.no_grad():
        ours = model(**q)
    with pytest.raises(ValueError, match="merge"):
        model.save_pretrained(tmp_path / "unmerged")
    out = export(model, tokenizer, tmp_path / "model", task="embed", max_length=64).path
    st = SentenceTransformer(str(out), device="cpu")
    assert_close(st.encode(TEXTS, convert_to_tensor=True), ours)


def test_apply_lora_checks_the_task(tiny_encoder_dir):
    with pytest.raises(TypeError, match="EmbeddingModel"):
        apply_lora(load_sequence_classifier(tiny_encoder_dir, num_labels=1, problem_type=None), "embed")
    with pytest.raises(ValueError, match="task must be"):
        apply_lora(EmbeddingModel.from_pretrained(tiny_encoder_dir), "generate")
