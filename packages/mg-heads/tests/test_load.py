import pytest
from transformers import AutoTokenizer

from mg_heads.classification import load_sequence_classifier
from mg_heads.embedding import EmbeddingModel
from mg_heads.export import export
from mg_heads.load import load_for_task


def test_load_for_task_reads_the_task_from_mg_export(tiny_decoder_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    rm = export(
        load_sequence_classifier(tiny_decoder_dir, num_labels=1, problem_type="regression"),
        tokenizer,
        tmp_path / "rm",
        task="rm",
        max_length=32,
    )
    embed = export(
        EmbeddingModel.from_pretrained(tiny_decoder_dir),
        tokenizer,
        tmp_path / "e",
        task="embed",
        max_length=32,
    )
    model = load_for_task(rm.path)
    assert type(model).__name__ == "Qwen2ForSequenceClassification" and not model.training
    loaded = load_for_task(embed.path)
    assert isinstance(loaded, EmbeddingModel) and loaded.pooling == "last" and loaded.max_length == 32


def test_load_for_task_checks_the_head(tiny_encoder_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = load_sequence_classifier(
        tiny_encoder_dir, num_labels=2, problem_type=None, id2label={0: "a", 1: "b"}
    )
    out = export(model, tokenizer, tmp_path / "c", task="classify", max_length=32).path
    with pytest.raises(ValueError, match="one output"):
        load_for_task(out, "rerank")
    with pytest.raises(ValueError, match="no mg_export.json"):
        load_for_task(tiny_encoder_dir)
