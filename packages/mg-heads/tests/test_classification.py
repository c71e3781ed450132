import pytest
from transformers import AutoTokenizer

from mg_heads.classification import HeadSpec, head_module_name, head_spec, load_sequence_classifier


def test_head_spec_per_task():
    assert head_spec("classify", ["neg", "pos"]) == HeadSpec(
        2, "single_label_classification", {0: "neg", 1: "pos"}
    )
    assert head_spec("classify", ["a", "b", "c"], "multi_label_classification").num_labels == 3
    assert head_spec("classify", problem_type="regression") == HeadSpec(1, "regression")
    assert head_spec("rm") == HeadSpec(1, "regression")
    assert head_spec("score") == HeadSpec(1, "regression")
    assert head_spec("rerank") == HeadSpec(1, None)
    with pytest.raises(ValueError, match="label names"):
        head_spec("classify")
    with pytest.raises(ValueError, match="fixed problem_type"):
        head_spec("rm", problem_type="regression")
    with pytest.raises(ValueError, match="task must be"):
        head_spec("generate")


def test_decoder_classifier_has_a_score_head_and_the_tokenizer_pad(tiny_decoder_dir):
    model = load_sequence_classifier(
        tiny_decoder_dir,
        num_labels=2,
        problem_type="single_label_classification",
        id2label={0: "no", 1: "yes"},
    )
    assert type(model).__name__ == "Qwen2ForSequenceClassification"
    assert head_module_name(model) == "score" and model.score.bias is None
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    assert model.config.pad_token_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.config.label2id == {"no": 0, "yes": 1}
    assert model.config.problem_type == "single_label_classification"


def test_decoder_without_a_pad_token_pads_with_eos(tiny_llama_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tokenizer.pad_token = None  # Llama-style tokenizer
    model = load_sequence_classifier(
        tiny_llama_dir, num_labels=1, problem_type="regression", tokenizer=tokenizer
    )
    assert model.config.pad_token_id == tokenizer.eos_token_id


def test_encoder_classifier_has_pooler_and_classifier(tiny_encoder_dir):
    model = load_sequence_classifier(tiny_encoder_dir, num_labels=1, problem_type=None)
    assert head_module_name(model) == "classifier" and model.bert.pooler is not None
    assert model.config.problem_type is None


def test_bad_arguments(tiny_encoder_dir):
    with pytest.raises(ValueError, match="problem_type"):
        load_sequence_classifier(tiny_encoder_dir, num_labels=2, problem_type="ranking")
    with pytest.raises(ValueError, match="id2label has 1"):
        load_sequence_classifier(tiny_encoder_dir, num_labels=2, problem_type=None, id2label={0: "a"})
