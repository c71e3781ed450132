"""Export each task, then load the folder with the other tools (transformers, sentence-transformers) and
check that they reproduce our outputs within 1e-4 in fp32."""

import json

import pytest
import torch
from conftest import PAIRS, TEXTS, assert_close
from sentence_transformers import CrossEncoder
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mg_heads.classification import head_spec, load_sequence_classifier
from mg_heads.embedding import EmbeddingModel
from mg_heads.export import export
from mg_heads.losses import bradley_terry, cosent, cross_entropy, listwise_ce, mse, multilabel_bce
from mg_heads.pooling import pool
from mg_heads.tokenize import encode_texts

LABELS = ["billing", "technical", "other"]


def logits_of(model, tokenizer, texts, pairs=None, **kw):
    batch = encode_texts(tokenizer, texts, pairs, max_length=64, seq_cls=True, **kw)
    return model(**batch).logits


def reload_logits(out, tokenizer, texts, pairs=None, **kw):
    reloaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        return logits_of(reloaded, tokenizer, texts, pairs, **kw)


def read(path):
    return json.loads(path.read_text())


def no_value_head_or_sbert_files(out):
    names = [p.name.lower() for p in out.rglob("*")]
    assert not [n for n in names if "value_head" in n or "v_head" in n], names
    assert "modules.json" not in names  # vLLM would start a classifier as an embedding model
    assert not [n for n in names if n.startswith("adapter_")], names


CLASSIFY_CASES = {
    "encoder-single": ("tiny_encoder_dir", "single_label_classification"),
    "decoder-single": ("tiny_decoder_dir", "single_label_classification"),
    "decoder-multi": ("tiny_decoder_dir", "multi_label_classification"),
    "encoder-regression": ("tiny_encoder_dir", "regression"),
}


@pytest.mark.parametrize("case", CLASSIFY_CASES)
def test_classify_reproduced_by_transformers(case, request, tmp_path, train):
    fixture, problem_type = CLASSIFY_CASES[case]
    path = request.getfixturevalue(fixture)
    tokenizer = AutoTokenizer.from_pretrained(path)
    labels = None if problem_type == "regression" else LABELS
    spec = head_spec("classify", labels, problem_type)
    model = load_sequence_classifier(
        path, num_labels=spec.num_labels, problem_type=spec.problem_type, id2label=spec.id2label
    )
    targets = {
        "single_label_classification": (cross_entropy, torch.tensor([0, 1, 2, 1])),
        "multi_label_classification": (
            multilabel_bce,
            torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 1, 1]]),
        ),
        "regression": (mse, torch.tensor([0.5, -1.0, 2.0, 0.0])),
    }
    loss_fn, y = targets[problem_type]
    train(model, lambda m: loss_fn(logits_of(m, tokenizer, TEXTS), y))
    with torch.no_grad():
        ours = logits_of(model, tokenizer, TEXTS)

    out = export(model, tokenizer, tmp_path / "model", task="classify", max_length=64, labels=labels).path
    assert_close(reload_logits(out, tokenizer, TEXTS), ours)
    config = read(out / "config.json")
    assert config["problem_type"] == problem_type
    if labels:
        assert config["id2label"] == {"0": "billing", "1": "technical", "2": "other"}
        assert config["label2id"] == {"billing": 0, "technical": 1, "other": 2}
    head = "score" if fixture == "tiny_decoder_dir" else "classifier"
    assert config["architectures"] == [
        "Qwen2ForSequenceClassification" if head == "score" else "BertForSequenceClassification"
    ]
    assert head in dict(AutoModelForSequenceClassification.from_pretrained(out).named_children())
    no_value_head_or_sbert_files(out)
    info = read(out / "mg_export.json")
    assert info["labels"] == labels and info["problem_type"] == problem_type and info["max_length"] == 64


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_decoder_classifier_scores_the_token_vllm_pools(tiny_decoder_dir, padding_side):
    """transformers finds the last token by pad id, vLLM by position; with our tokenization they agree,
    also with pad == eos."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    tokenizer.pad_token = tokenizer.eos_token
    model = load_sequence_classifier(
        tiny_decoder_dir, num_labels=2, problem_type=None, tokenizer=tokenizer
    ).eval()
    batch = encode_texts(tokenizer, TEXTS, max_length=64, padding_side=padding_side, seq_cls=True)
    with torch.no_grad():
        hidden = model.model(**batch).last_hidden_state
        assert_close(model(**batch).logits, model.score(pool(hidden, batch["attention_mask"], "last")))


def test_rm_reproduced_by_transformers(tiny_decoder_dir, tmp_path, train):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    model = load_sequence_classifier(tiny_decoder_dir, num_labels=1, problem_type="regression")

    def loss_of(m):
        return bradley_terry(logits_of(m, tokenizer, TEXTS), logits_of(m, tokenizer, PAIRS), margin=0.5)

    train(model, loss_of)
    with torch.no_grad():
        rewards = logits_of(model, tokenizer, TEXTS)
    out = export(
        model, tokenizer, tmp_path / "rm", task="rm", max_length=64, training={"loss": "bradley_terry"}
    ).path
    assert_close(reload_logits(out, tokenizer, TEXTS), rewards)
    config = read(out / "config.json")
    assert (config["num_labels"] if "num_labels" in config else len(config["id2label"])) == 1
    assert config["problem_type"] == "regression"
    no_value_head_or_sbert_files(out)
    info = read(out / "mg_export.json")
    assert info["training"] == {"loss": "bradley_terry"}
    assert (
        info["serve"]["vllm>=0.33"]["command"]
        == f"vllm serve {out} --runner pooling --convert classify --dtype float32"
    )
    assert "--override-pooler-config" in info["serve"]["vllm==0.8.5"]["command"]


@pytest.fixture
def minilm_cross_encoder(minilm_dir):
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    return load_sequence_classifier(minilm_dir, num_labels=1, problem_type=None), tokenizer


@pytest.mark.slow  # 17 s here: trains a MiniLM cross-encoder
def test_rerank_reproduced_by_cross_encoder(minilm_cross_encoder, tmp_path, train):
    model, tokenizer = minilm_cross_encoder
    # Groups of 1 positive + 1 negative per query: [B, G] scores, positive first.
    queries, docs = TEXTS[:2] * 2, [PAIRS[0], PAIRS[1], PAIRS[2], PAIRS[3]]

    def loss_of(m):
        return listwise_ce(logits_of(m, tokenizer, queries, docs).reshape(2, 2).T)

    train(model, loss_of)
    # A forward with labels makes transformers set problem_type to "regression"; export must undo that.
    model(**encode_texts(tokenizer, queries, docs, max_length=64), labels=torch.zeros(4))
    assert model.config.problem_type == "regression"
    with torch.no_grad():
        ours = logits_of(model, tokenizer, queries, docs)
    out = export(model, tokenizer, tmp_path / "rerank", task="rerank", max_length=64).path

    config = read(out / "config.json")
    assert config.get("problem_type") is None and config["architectures"] == ["BertForSequenceClassification"]
    assert_close(reload_logits(out, tokenizer, queries, docs), ours)
    cross_encoder = CrossEncoder(str(out), device="cpu")
    scores = cross_encoder.predict(list(zip(queries, docs, strict=True)), convert_to_tensor=True)
    assert_close(scores, torch.sigmoid(ours[:, 0]))  # CrossEncoder and vLLM apply a sigmoid
    no_value_head_or_sbert_files(out)
    assert (
        read(out / "mg_export.json")["serve"]["vllm==0.8.5"]["command"]
        == f"vllm serve {out} --task score --dtype float32"
    )


def test_score_reproduced_by_cross_encoder(minilm_cross_encoder, tmp_path, train):
    model, tokenizer = minilm_cross_encoder
    labels = torch.tensor([0.9, 0.1, 0.4, 0.6])
    train(model, lambda m: cosent(logits_of(m, tokenizer, TEXTS, PAIRS), labels))
    with torch.no_grad():
        ours = logits_of(model, tokenizer, TEXTS, PAIRS)
    out = export(model, tokenizer, tmp_path / "score", task="score", max_length=64).path
    assert read(out / "config.json")["problem_type"] == "regression"
    assert_close(reload_logits(out, tokenizer, TEXTS, PAIRS), ours)
    cross_encoder = CrossEncoder(str(out), device="cpu")
    scores = cross_encoder.predict(list(zip(TEXTS, PAIRS, strict=True)), convert_to_tensor=True)
    assert_close(scores, ours[:, 0])  # raw scores, as vLLM serves regression
    no_value_head_or_sbert_files(out)


def test_export_replaces_the_folder_atomically(tiny_decoder_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    model = load_sequence_classifier(tiny_decoder_dir, num_labels=1, problem_type="regression")
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    export(model, tokenizer, out, task="rm", max_length=32)
    assert not (out / "stale.txt").exists() and (out / "mg_export.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp or old folders left

    with pytest.raises(ValueError, match="num_labels=1"):
        export(
            load_sequence_classifier(tiny_decoder_dir, num_labels=2, problem_type=None),
            tokenizer,
            out,
            task="rm",
            max_length=32,
        )
    assert (out / "mg_export.json").is_file()  # a failed export leaves the old folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_export_refuses_mismatched_models(tiny_decoder_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    embedder = EmbeddingModel.from_pretrained(tiny_decoder_dir)
    with pytest.raises(ValueError, match="pools with 'last'"):
        export(embedder, tokenizer, tmp_path / "m", task="embed", max_length=32, pooling="mean")
    with pytest.raises(TypeError, match="ForSequenceClassification"):
        export(embedder, tokenizer, tmp_path / "m", task="classify", max_length=32)
    with pytest.raises(ValueError, match="task must be"):
        export(embedder, tokenizer, tmp_path / "m", task="generate", max_length=32)


def test_embed_export_records_what_it_wrote(tiny_decoder_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    model = EmbeddingModel.from_pretrained(tiny_decoder_dir)
    written = export(model, tokenizer, tmp_path / "m", task="embed", max_length=32, normalize=True)
    out = written.path
    info = read(out / "mg_export.json")
    # The returned value says what the file says (callers use it instead of reading the file back).
    assert (written.task, written.architecture, written.pooling, written.normalize, written.max_length) == (
        info["task"],
        info["architecture"],
        info["pooling"],
        info["normalize"],
        info["max_length"],
    )
    assert written.serve == info["serve"]
    assert written.serve_command == f"vllm serve {out} --runner pooling --convert embed --dtype float32"
    assert {k: info[k] for k in ("task", "architecture", "pooling", "normalize", "max_length")} == {
        "task": "embed",
        "architecture": "Qwen2Model",
        "pooling": "last",
        "normalize": True,
        "max_length": 32,
    }
    assert info["serve"] == {
        "vllm>=0.33": {"command": f"vllm serve {out} --runner pooling --convert embed --dtype float32"},
        "vllm==0.8.5": {"command": f"vllm serve {out} --task embed --dtype float32"},
    }
