import json

import pytest
import torch
from conftest import PAIRS, TEXTS, assert_close
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

from mg_heads.embedding import EmbeddingModel
from mg_heads.export import export
from mg_heads.losses import info_nce, matryoshka
from mg_heads.tokenize import encode_texts


def embed(model, tokenizer, texts, max_length=64, **kw):
    with torch.no_grad():
        return model(**encode_texts(tokenizer, texts, max_length=max_length, **kw))


def info_nce_step(tokenizer):
    def loss_of(model):
        return info_nce(embed_train(model, tokenizer, TEXTS), embed_train(model, tokenizer, PAIRS))

    return loss_of


def embed_train(model, tokenizer, texts):
    return model(**encode_texts(tokenizer, texts, max_length=64))


def read(path):
    return json.loads(path.read_text())


def test_minilm_mean_normalized_reproduced_by_sentence_transformers(minilm_dir, tmp_path, train):
    model = EmbeddingModel.from_pretrained(minilm_dir)
    assert (model.pooling, model.normalize, model.max_length) == ("mean", True, 256)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    before = embed(model, tokenizer, TEXTS)
    train(model, info_nce_step(tokenizer))
    ours = embed(model, tokenizer, TEXTS)
    assert (ours - before).abs().max() > 1e-3  # trained

    out = export(model, tokenizer, tmp_path / "model", task="embed", max_length=128).path
    st = SentenceTransformer(str(out), device="cpu")
    assert_close(st.encode(TEXTS, convert_to_tensor=True), ours)
    assert_close(ours.norm(dim=-1), torch.ones(len(TEXTS)))

    modules = [m["type"] for m in read(out / "modules.json")]
    assert modules == [f"sentence_transformers.models.{t}" for t in ("Transformer", "Pooling", "Normalize")]
    pooling = read(out / "1_Pooling" / "config.json")
    assert [k for k, v in pooling.items() if v is True] == ["pooling_mode_mean_tokens"]
    assert read(out / "config.json")["architectures"] == ["BertModel"]
    assert read(out / "sentence_bert_config.json")["max_seq_length"] == 128
    assert st.max_seq_length == 128


@pytest.mark.parametrize(
    ("fixture", "arch"), [("tiny_decoder_dir", "Qwen2Model"), ("tiny_llama_dir", "LlamaModel")]
)
def test_decoder_last_token_reproduced_by_sentence_transformers(fixture, arch, request, tmp_path, train):
    path = request.getfixturevalue(fixture)
    model = EmbeddingModel.from_pretrained(path)
    assert type(model.backbone).__name__ == arch and model.pooling == "last"
    tokenizer = AutoTokenizer.from_pretrained(path)

    def loss_of(m):
        q, p = embed_train(m, tokenizer, TEXTS), embed_train(m, tokenizer, PAIRS)
        return matryoshka(info_nce, [128, 32], q, p)

    train(model, loss_of)
    ours = embed(model, tokenizer, TEXTS)
    out = export(
        model, tokenizer, tmp_path / "model", task="embed", max_length=64, matryoshka_dims=[32, 128]
    ).path
    st = SentenceTransformer(str(out), device="cpu")
    assert_close(st.encode(TEXTS, convert_to_tensor=True), ours)

    config = read(out / "config.json")
    assert config["architectures"] == [arch]
    assert config["matryoshka_dimensions"] == [128, 32]
    assert read(out / "config_sentence_transformers.json")["matryoshka_dimensions"] == [128, 32]
    pooling = read(out / "1_Pooling" / "config.json")
    assert [k for k, v in pooling.items() if v is True] == ["pooling_mode_lasttoken"]
    # A truncated + renormalized sentence-transformers embedding is our truncated one, renormalized.
    st_32 = SentenceTransformer(str(out), device="cpu", truncate_dim=32)
    assert_close(
        torch.nn.functional.normalize(st_32.encode(TEXTS, convert_to_tensor=True), dim=-1),
        torch.nn.functional.normalize(ours[:, :32], dim=-1),
    )


def test_left_and_right_padding_give_the_same_last_token_embeddings(tiny_decoder_dir):
    model = EmbeddingModel.from_pretrained(tiny_decoder_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    assert_close(embed(model, tokenizer, TEXTS, padding_side="left"), embed(model, tokenizer, TEXTS))


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_pad_equal_to_eos_gives_the_unpadded_embedding(tiny_decoder_dir, padding_side):
    model = EmbeddingModel.from_pretrained(tiny_decoder_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    tokenizer.pad_token = tokenizer.eos_token
    # The second text really ends with eos: it must be pooled, not mistaken for padding.
    texts = ["a long text so that the others get padded with eos", "ends with eos<|im_end|>", "hi"]
    batched = embed(model, tokenizer, texts, padding_side=padding_side)
    for i, text in enumerate(texts):
        assert_close(batched[i], embed(model, tokenizer, [text])[0])


@pytest.mark.parametrize("pooling", ["cls", "mean", "last"])
def test_every_pooling_mode_round_trips_through_sentence_transformers(tiny_encoder_dir, tmp_path, pooling):
    model = EmbeddingModel.from_pretrained(tiny_encoder_dir, pooling=pooling, normalize=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    out = model.save_pretrained(tmp_path, tokenizer, max_length=32)
    modules = [m["type"].rsplit(".", 1)[-1] for m in read(out / "modules.json")]
    assert modules == ["Transformer", "Pooling"]  # no Normalize module when not normalized
    st = SentenceTransformer(str(out), device="cpu")
    assert_close(st.encode(TEXTS, convert_to_tensor=True), embed(model, tokenizer, TEXTS, max_length=32))
    again = EmbeddingModel.from_pretrained(out)
    assert (again.pooling, again.normalize, again.max_length) == (pooling, False, 32)


def test_activation_checkpointing_passthrough(tiny_decoder_dir):
    model = EmbeddingModel.from_pretrained(tiny_decoder_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    model.activation_checkpointing_enable()  # what the transformers 5 Trainer calls
    assert model.is_activation_checkpointing and model.backbone.is_activation_checkpointing
    model.train()
    embed_train(model, tokenizer, TEXTS).sum().backward()
    assert model.backbone.embed_tokens.weight.grad is not None
    model.activation_checkpointing_disable()
    assert not model.is_activation_checkpointing
    with pytest.warns(FutureWarning):  # the pre-5.x names still reach the backbone
        model.gradient_checkpointing_enable()
    assert model.backbone.is_activation_checkpointing


def test_unknown_pooling_is_refused(tiny_encoder_dir):
    with pytest.raises(ValueError, match="pooling must be one of"):
        EmbeddingModel.from_pretrained(tiny_encoder_dir, pooling="max")
