"""The HTTP API on real servers (uvicorn on loopback) over real exports: every route's shape, every error's
status and shape (and the server still serving after it), the API key, the router mounted in another app,
the official openai client, and a bounded load test."""

from __future__ import annotations

import asyncio
import base64
import statistics
import time

import httpx
import numpy as np
import pytest
from conftest import LABELS, TEXTS, running
from fastapi import FastAPI

from mg_serve import create_app, router
from mg_serve.engine import TorchEngine

NAME = "emb"


@pytest.fixture(scope="module")
def engine(embed_export):
    engine = TorchEngine(embed_export)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def url(engine):
    with running(create_app(engine, served_model_name=NAME)) as base:
        yield base


@pytest.fixture(scope="module")
def http(url):
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def classifier_url(classify_export):
    engine = TorchEngine(classify_export)
    with running(create_app(engine, served_model_name="clf")) as base:
        yield base
    engine.close()


def assert_error(response: httpx.Response, status: int, type_: str, message: str = "") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status and error["type"] == type_
    assert message in error["message"]
    return error


def assert_still_serving(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    assert http.post("/v1/embeddings", json={"input": "still here"}).status_code == 200


# --- shapes ---------------------------------------------------------------------------------------------------
def test_embeddings_shape_and_values(http, engine):
    body = http.post("/v1/embeddings", json={"model": NAME, "input": TEXTS}).json()
    assert body["id"].startswith("embd-") and body["object"] == "list" and body["model"] == NAME
    assert isinstance(body["created"], int)
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    assert {d["object"] for d in body["data"]} == {"embedding"}
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(TEXTS)
    np.testing.assert_allclose([d["embedding"] for d in body["data"]], engine.embed(TEXTS), atol=1e-5)


def test_base64_embeddings_decode_to_the_float_ones(http):
    floats = http.post("/v1/embeddings", json={"input": TEXTS[:2]}).json()["data"]
    b64 = http.post("/v1/embeddings", json={"input": TEXTS[:2], "encoding_format": "base64"}).json()["data"]
    decoded = [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in b64]
    np.testing.assert_array_equal(decoded, np.array([d["embedding"] for d in floats], dtype=np.float32))


def test_dimensions_are_the_exports_matryoshka_dimensions(http):
    got = http.post("/v1/embeddings", json={"input": "a cat", "dimensions": 64}).json()["data"][0][
        "embedding"
    ]
    assert len(got) == 64 and np.linalg.norm(got) == pytest.approx(1, abs=1e-5)
    error = assert_error(
        http.post("/v1/embeddings", json={"input": "a cat", "dimensions": 100}), 400, "BadRequestError"
    )
    assert error["param"] == "dimensions"


def test_dimensions_on_a_model_without_matryoshka_is_a_400(minilm_dir):
    engine = TorchEngine(minilm_dir)  # the plain sentence-transformers folder: no matryoshka_dimensions
    try:
        with running(create_app(engine)) as base:
            response = httpx.post(f"{base}/v1/embeddings", json={"input": "a", "dimensions": 64})
    finally:
        engine.close()
    assert_error(response, 400, "BadRequestError", "matryoshka")


def test_pooling_returns_the_embedding(http, engine):
    body = http.post("/pooling", json={"input": ["a cat"]}).json()
    assert body["id"].startswith("pool-") and body["data"][0]["object"] == "pooling"
    np.testing.assert_allclose(body["data"][0]["data"], engine.embed(["a cat"])[0], atol=1e-5)


@pytest.mark.parametrize("path", ["/score", "/v1/score"])
def test_score_pairs_one_text_with_many(http, engine, path):
    body = http.post(path, json={"model": NAME, "text_1": "a cat", "text_2": ["a dog", "a car"]}).json()
    assert body["id"].startswith("score-") and body["object"] == "list"
    assert [d["object"] for d in body["data"]] == ["score", "score"]
    expected = engine.score(["a cat", "a cat"], ["a dog", "a car"])
    assert [d["score"] for d in body["data"]] == pytest.approx(expected, abs=1e-5)


def test_score_with_lists_of_different_lengths_is_a_400(http):
    response = http.post("/score", json={"text_1": ["a", "b"], "text_2": ["c", "d", "e"]})
    assert_error(response, 400, "BadRequestError", "give one or as many")


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_rerank_sorts_by_relevance_and_keeps_top_n(http, path):
    docs = ["the stock market fell", "cats sleep most of the day", "a kitten is a young cat"]
    body = http.post(path, json={"model": NAME, "query": "what do cats do", "documents": docs}).json()
    assert body["id"].startswith("rerank-") and body["usage"]["total_tokens"] > 0
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["results"][-1]["index"] == 0  # the unrelated document last
    assert all(r["document"]["text"] == docs[r["index"]] for r in body["results"])
    top = http.post(path, json={"query": "what do cats do", "documents": docs, "top_n": 2}).json()
    assert top["results"] == body["results"][:2]


def test_tokenize_and_detokenize_round_trip(http, engine):
    body = http.post("/tokenize", json={"prompt": "the cat sat", "return_token_strs": True}).json()
    assert body["tokens"] == engine.tokenizer("the cat sat")["input_ids"]
    assert body["count"] == len(body["tokens"]) and body["max_model_len"] == 128
    assert body["token_strs"][0] == "[CLS]"
    text = http.post("/detokenize", json={"tokens": body["tokens"]}).json()["prompt"]
    assert text == "[CLS] the cat sat [SEP]"


def test_models_health_version_metrics(http, embed_export):
    models = http.get("/v1/models").json()
    assert models["object"] == "list"
    (card,) = models["data"]
    assert card["id"] == NAME and card["object"] == "model" and card["max_model_len"] == 128
    assert card["root"] == str(embed_export)
    assert http.get("/health").status_code == 200
    import mg_serve

    assert http.get("/version").json() == {"version": mg_serve.__version__}
    http.post("/v1/embeddings", json={"input": "count me"})
    metrics = http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'mg_serve_requests_total{method="POST",route="/v1/embeddings",status="200"}' in metrics.text
    assert "mg_serve_request_seconds_bucket" in metrics.text
    assert "mg_serve_batch_rows_count" in metrics.text


# --- errors ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_kwargs", "status", "type_", "message"),
    [
        ({"content": b"{not json"}, 400, "BadRequestError", "JSON"),
        ({"json": {"input": 5}}, 400, "BadRequestError", "input"),
        ({"json": {}}, 400, "BadRequestError", "input: Field required"),
        ({"json": {"input": ""}}, 400, "BadRequestError", "empty"),
        ({"json": {"input": []}}, 400, "BadRequestError", "empty"),
        ({"json": {"input": "a", "encoding_format": "int8"}}, 400, "BadRequestError", "encoding_format"),
        (
            {"json": {"input": "a", "model": "other"}},
            404,
            "NotFoundError",
            "The model `other` does not exist.",
        ),
        ({"json": {"input": "word " * 300}}, 400, "BadRequestError", "maximum context length is 128"),
    ],
    ids=[
        "malformed-json",
        "wrong-type",
        "missing-input",
        "empty-string",
        "empty-list",
        "bad-enum",
        "model",
        "too-long",
    ],
)
def test_bad_embedding_requests(http, request_kwargs, status, type_, message):
    assert_error(http.post("/v1/embeddings", **request_kwargs), status, type_, message)
    assert_still_serving(http)


def test_truncation_when_asked(http):
    body = http.post("/v1/embeddings", json={"input": "word " * 300, "truncate_prompt_tokens": 20}).json()
    assert body["usage"]["prompt_tokens"] == 20


@pytest.mark.parametrize(
    ("method", "path", "status", "type_"),
    [
        ("POST", "/classify", 404, "NotFoundError"),  # an embedder does not classify
        ("POST", "/v1/chat/completions", 404, "NotFoundError"),  # nor generate
        ("POST", "/v1/completions", 404, "NotFoundError"),
        ("GET", "/no/such/route", 404, "NotFoundError"),
        ("GET", "/v1/embeddings", 405, "MethodNotAllowedError"),
    ],
)
def test_routes_the_model_does_not_serve(http, method, path, status, type_):
    assert_error(http.request(method, path, json={"input": "a"}), status, type_)
    assert_still_serving(http)


def test_an_unexpected_error_is_a_500_and_the_server_keeps_serving(http, engine, monkeypatch):
    # A fault we cannot cause for real: the model's forward raising. Only inputs with "boom" hit it.
    forward = engine.batcher.forward

    def faulty(rows):
        boom = engine.tokenizer("boom", add_special_tokens=False)["input_ids"][0]
        if any(boom in r["input_ids"] for r in rows):
            raise RuntimeError("the forward broke")
        return forward(rows)

    monkeypatch.setattr(engine.batcher, "forward", faulty)
    assert_error(http.post("/v1/embeddings", json={"input": "boom"}), 500, "InternalServerError", "broke")
    assert_still_serving(http)


# --- classifier server ----------------------------------------------------------------------------------------
def test_classify_shape(classifier_url):
    body = httpx.post(f"{classifier_url}/classify", json={"model": "clf", "input": TEXTS}).json()
    assert body["id"].startswith("classify-") and body["object"] == "list"
    for i, d in enumerate(body["data"]):
        assert d["index"] == i and d["num_classes"] == 3 and len(d["probs"]) == 3
        assert sum(d["probs"]) == pytest.approx(1, abs=1e-5)
        assert d["label"] == LABELS[int(np.argmax(d["probs"]))]
    raw = httpx.post(f"{classifier_url}/classify", json={"input": TEXTS[0], "use_activation": False}).json()
    assert not np.isclose(sum(raw["data"][0]["probs"]), 1)  # logits
    pooled = httpx.post(f"{classifier_url}/pooling", json={"input": TEXTS}).json()
    np.testing.assert_allclose(
        [d["data"] for d in pooled["data"]], [d["probs"] for d in body["data"]], atol=1e-6
    )


def test_a_three_label_classifier_serves_no_score_and_no_embeddings(classifier_url):
    for path, body in [("/score", {"text_1": "a", "text_2": "b"}), ("/v1/embeddings", {"input": "a"})]:
        assert_error(httpx.post(f"{classifier_url}{path}", json=body), 404, "NotFoundError", "does not serve")


# --- API key, mounting, clients -------------------------------------------------------------------------------
def test_api_key_guards_every_route_but_health(engine):
    with running(create_app(engine, api_key="s3cret")) as base, httpx.Client(base_url=base) as client:
        assert client.get("/health").status_code == 200
        for method, path in [
            ("GET", "/v1/models"),
            ("GET", "/metrics"),
            ("GET", "/version"),
            ("POST", "/v1/embeddings"),
        ]:
            assert_error(
                client.request(method, path, json={"input": "a"}), 401, "UnauthorizedError", "API key"
            )
        wrong = client.post("/v1/embeddings", json={"input": "a"}, headers={"Authorization": "Bearer nope"})
        assert_error(wrong, 401, "UnauthorizedError")
        right = client.post("/v1/embeddings", json={"input": "a"}, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200


def test_router_mounts_in_another_fastapi_app(engine):
    asyncio.run(_mounted(engine))


async def _mounted(engine) -> None:
    app = FastAPI()

    @app.get("/their/own")
    def their_own():
        return {"ok": True}

    app.include_router(router(engine, served_model_name=NAME), prefix="/ml")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        assert (await client.get("/their/own")).json() == {"ok": True}
        body = (await client.post("/ml/v1/embeddings", json={"model": NAME, "input": ["a cat"]})).json()
        np.testing.assert_allclose(body["data"][0]["embedding"], engine.embed(["a cat"])[0], atol=1e-5)
        assert (await client.get("/ml/v1/models")).json()["data"][0]["id"] == NAME
        # The error shape without mg-serve's app around it.
        assert_error(await client.post("/ml/v1/embeddings", content=b"{"), 400, "BadRequestError")
        assert_error(await client.post("/ml/classify", json={"input": "a"}), 404, "NotFoundError")


def test_openai_client_embeddings(url, engine):
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    # The client asks for base64 by default and decodes it itself.
    default = client.embeddings.create(model=NAME, input=TEXTS)
    floats = client.embeddings.create(model=NAME, input=TEXTS, encoding_format="float")
    expected = np.array(engine.embed(TEXTS))
    for response in (default, floats):
        got = np.array([d.embedding for d in response.data])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert response.usage.prompt_tokens > 0 and response.model == NAME


# --- load -----------------------------------------------------------------------------------------------------
def test_load_500_requests_from_50_clients(url):
    """Bounded load: 500 requests, 50 concurrent clients, zero errors; p50/p99 and throughput printed."""
    latencies: list[float] = []
    errors: list[str] = []

    async def client(i: int, http: httpx.AsyncClient) -> None:
        for j in range(10):
            text = f"{TEXTS[(i + j) % len(TEXTS)]} {i} {j}"
            start = time.perf_counter()
            response = await http.post("/v1/embeddings", json={"model": NAME, "input": text})
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200 or len(response.json()["data"][0]["embedding"]) != 384:
                errors.append(response.text)

    async def main() -> float:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
            start = time.perf_counter()
            await asyncio.gather(*(client(i, http) for i in range(50)))
            return time.perf_counter() - start

    elapsed = asyncio.run(main())
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(0.99 * len(latencies)) - 1]
    print(
        f"\n500 requests, 50 clients: {len(latencies) / elapsed:.0f} req/s, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    assert errors == [] and len(latencies) == 500


# --- a causal LM: the generation routes (mg_serve.generation) inside the same app -----------------------------
def test_a_causal_lm_gets_the_generation_routes_behind_the_same_key(tiny_decoder_dir):
    app = create_app(tiny_decoder_dir, served_model_name="gen", api_key="k")
    auth = {"Authorization": "Bearer k"}
    messages = [{"role": "user", "content": "hi"}]
    with running(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        chat = {"model": "gen", "messages": messages, "max_tokens": 3, "temperature": 0}
        assert_error(client.post("/v1/chat/completions", json=chat), 401, "UnauthorizedError")
        body = client.post("/v1/chat/completions", json=chat, headers=auth).json()
        assert body["object"] == "chat.completion" and body["model"] == "gen"
        assert body["usage"]["completion_tokens"] <= 3
        assert_error(client.post("/v1/embeddings", json={"input": "a"}, headers=auth), 404, "NotFoundError")
        tokens = client.post("/tokenize", json={"messages": messages}, headers=auth).json()
        rendered = app.state.engine.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        assert tokens["tokens"] == app.state.engine.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        assert client.get("/v1/models", headers=auth).json()["data"][0]["id"] == "gen"
