"""Shared pieces of the mg-serve suite: real exports (mg-heads' `export` on the tiny/MiniLM models, nothing
trained) and real servers (uvicorn in a thread on a free loopback port)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mg_heads.classification import head_spec, load_sequence_classifier
from mg_heads.embedding import EmbeddingModel
from mg_heads.export import export

TEXTS = [
    "the cat sat on the mat",
    "hello",
    "a much longer sentence that needs padding in its batch",
    "机器学习很有趣",
]
LABELS = ["refund", "shipping", "invoice"]
MATRYOSHKA = [384, 128, 64]


@pytest.fixture(scope="session")
def embed_export(minilm_dir, tmp_path_factory) -> Path:
    """MiniLM exported as an mg-train embedder, with Matryoshka dimensions."""
    model = EmbeddingModel.from_pretrained(minilm_dir)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    out = tmp_path_factory.mktemp("exports") / "embed"
    export(model, tokenizer, out, task="embed", max_length=128, matryoshka_dims=MATRYOSHKA)
    return out


@pytest.fixture(scope="session")
def classify_export(tiny_encoder_dir, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    spec = head_spec("classify", LABELS)
    model = load_sequence_classifier(
        tiny_encoder_dir, num_labels=spec.num_labels, problem_type=spec.problem_type, id2label=spec.id2label
    )
    out = tmp_path_factory.mktemp("exports") / "classify"
    export(model, AutoTokenizer.from_pretrained(tiny_encoder_dir), out, task="classify", max_length=64)
    return out


@pytest.fixture(scope="session")
def rerank_export(tiny_encoder_dir, tmp_path_factory) -> Path:
    torch.manual_seed(1)
    spec = head_spec("rerank")
    model = load_sequence_classifier(tiny_encoder_dir, num_labels=1, problem_type=spec.problem_type)
    with torch.no_grad():  # a random head scores near 0.5 for everything; spread the scores out
        model.classifier.weight.mul_(20)
    out = tmp_path_factory.mktemp("exports") / "rerank"
    export(model, AutoTokenizer.from_pretrained(tiny_encoder_dir), out, task="rerank", max_length=64)
    return out


@pytest.fixture(scope="session")
def rm_export(tiny_decoder_dir, tmp_path_factory) -> Path:
    """A decoder reward model (Qwen2ForSequenceClassification, one output, regression)."""
    torch.manual_seed(2)
    spec = head_spec("rm")
    model = load_sequence_classifier(tiny_decoder_dir, num_labels=1, problem_type=spec.problem_type)
    with torch.no_grad():
        model.score.weight.mul_(50)
    out = tmp_path_factory.mktemp("exports") / "rm"
    export(model, AutoTokenizer.from_pretrained(tiny_decoder_dir), out, task="rm", max_length=64)
    return out


@pytest.fixture(scope="session")
def plain_classifier(tiny_encoder_dir, tmp_path_factory) -> Path:
    """A transformers folder saved the ordinary way (no mg_export.json), one output."""
    torch.manual_seed(3)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_encoder_dir, num_labels=1)
    out = tmp_path_factory.mktemp("plain") / "cross-encoder"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
