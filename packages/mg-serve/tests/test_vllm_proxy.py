"""The API-key proxy `mg-serve --engine vllm --api-key` puts in front of vLLM, checked here in front of a real
server that speaks the same API without vLLM's minute-long start: mg-serve's own torch engine on the tiny
decoder (no key of its own), both on loopback. The proxy in front of real vLLM: test_vllm_engine.py."""

from __future__ import annotations

import httpx
import openai
import pytest
import torch
from conftest import free_port, running

from mg_serve import create_app
from mg_serve.vllm_proxy import create_proxy_app

KEY = "s3cret"
ROUTES = [  # vLLM leaves all but the /v1 ones open under its own --api-key
    ("GET", "/v1/models", None),
    ("POST", "/v1/completions", {"model": "tiny", "prompt": "hi", "max_tokens": 2}),
    ("POST", "/tokenize", {"model": "tiny", "prompt": "hi"}),
    ("GET", "/metrics", None),
    ("GET", "/version", None),
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # server, worker and client share this process (see test_generation.py)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def upstream(tiny_decoder_dir):
    with running(create_app(tiny_decoder_dir, served_model_name="tiny")) as url:
        yield url


@pytest.fixture(scope="module")
def proxy(upstream):
    with running(create_proxy_app(upstream, KEY)) as url:
        yield url


def authorized(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == 401 and error["type"] == "UnauthorizedError"
    assert "API key" in error["message"]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_but_health_needs_the_key(proxy, method, path, body):
    assert_refused(httpx.request(method, proxy + path, json=body, timeout=60))
    assert_refused(httpx.request(method, proxy + path, json=body, headers=authorized("wrong"), timeout=60))
    answer = httpx.request(method, proxy + path, json=body, headers=authorized(), timeout=60)
    assert answer.status_code == 200, answer.text


def test_health_is_open(proxy):
    assert httpx.get(proxy + "/health", timeout=10).status_code == 200


def test_answers_pass_through_as_the_server_behind_gives_them(proxy, upstream):
    body = {"model": "tiny", "prompt": "the cat", "max_tokens": 8, "temperature": 0}
    direct = httpx.post(upstream + "/v1/completions", json=body, timeout=60)
    through = httpx.post(proxy + "/v1/completions", json=body, headers=authorized(), timeout=60)
    assert through.status_code == direct.status_code == 200
    assert through.json()["choices"] == direct.json()["choices"]
    assert through.headers["content-type"] == direct.headers["content-type"]
    # Errors too: status and body of the server behind.
    wrong = {**body, "model": "nope"}
    direct = httpx.post(upstream + "/v1/completions", json=wrong, timeout=60)
    through = httpx.post(proxy + "/v1/completions", json=wrong, headers=authorized(), timeout=60)
    assert through.status_code == direct.status_code == 404
    assert through.json() == direct.json()


def test_the_openai_client_streams_through_it(proxy):
    client = openai.OpenAI(base_url=proxy + "/v1", api_key=KEY, max_retries=0)
    messages = [{"role": "user", "content": "Name three colours."}]
    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=12, temperature=0)
    stream = client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=12, temperature=0, stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 2  # it arrived in pieces, not as one buffered answer
    assert "".join(pieces) == whole.choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=proxy + "/v1", api_key="wrong", max_retries=0).models.list()


def test_a_client_leaving_mid_stream_does_not_stop_the_proxy(proxy):
    body = {"model": "tiny", "prompt": "the cat", "max_tokens": 200, "stream": True, "temperature": 0}
    with httpx.stream("POST", proxy + "/v1/completions", json=body, headers=authorized(), timeout=60) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # the first event, then hang up
    after = httpx.post(
        proxy + "/v1/completions", json={**body, "stream": False, "max_tokens": 2}, headers=authorized()
    )
    assert after.status_code == 200 and after.json()["choices"][0]["text"]


def test_no_server_behind_is_a_502_in_the_error_shape():
    with running(create_proxy_app(f"http://127.0.0.1:{free_port()}", KEY)) as url:
        answer = httpx.post(url + "/v1/completions", json={}, headers=authorized(), timeout=30)
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == 502 and "did not answer" in error["message"]
