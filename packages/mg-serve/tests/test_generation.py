"""Generation: /v1/chat/completions and /v1/completions on the torch engine, through real servers on loopback
(uvicorn in a thread), the official openai client and raw HTTP; the reference is transformers' generate."""

from __future__ import annotations

import json
import shutil
import socket
import time

import httpx
import openai
import pytest
import torch
from conftest import running
from fastapi import FastAPI

from mg_serve.generation import SamplingParams, load_generate_engine, make_router, router
from mg_serve.generation.engine import IncrementalDecoder, Penalties, sample

TINY = "tiny"
QUESTIONS = ["What is the capital of France?", "Name three colours."]
# ~6,800 tokens for the tiny decoder's tokenizer: longer than its 2,048-token context.
LONG_TEXT = "the cat sat on the mat and looked at the dog " * 360


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The server, its worker and the client share this process, and the machine's few cores are shared
    with other jobs: with several intra-op threads, every op of a one-token step waits for a partner
    thread that is not running (steps 30x slower here). One thread for this module's tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_engine(tiny_decoder_dir):
    engine = load_generate_engine(tiny_decoder_dir, served_model_name=TINY)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def tiny_url(tiny_engine):
    """The router mounted under /ml in an app of the test's own: no app.state.engine, no mg-serve app, no
    error handlers; the engine comes from make_router's function."""
    app = FastAPI()
    app.include_router(make_router(lambda request: tiny_engine), prefix="/ml")
    with running(app) as url:
        yield url + "/ml"


@pytest.fixture(scope="module")
def tiny_client(tiny_url):
    return openai.OpenAI(base_url=tiny_url + "/v1", api_key="unused", max_retries=0)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- SmolLM2: the same tokens as transformers' greedy generate -----------------------------------------------


@pytest.fixture(scope="module")
def smol(smollm2_dir):
    """SmolLM2 behind the default `router`, which serves app.state.engine."""
    engine = load_generate_engine(smollm2_dir, served_model_name="smol")
    app = FastAPI()
    app.state.engine = engine
    app.include_router(router)
    with running(app) as url:
        yield engine, openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    engine.close()


def reference_greedy(engine, prompt_ids: list[int], max_new_tokens: int) -> tuple[str, list[int]]:
    """transformers' generate, greedy, on the same weights: the text and the new token ids."""
    ids = torch.tensor([prompt_ids])
    out = engine.model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new_tokens
    )
    new = out[0, ids.shape[1] :].tolist()
    return engine.tokenizer.decode(new, skip_special_tokens=True), new


@pytest.mark.parametrize("question", QUESTIONS)
def test_smollm2_chat_greedy_is_transformers_generate(smol, question):
    engine, client = smol
    prompt = engine.tokenizer.apply_chat_template(user(question), tokenize=False, add_generation_prompt=True)
    prompt_ids = engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    expected, new_ids = reference_greedy(engine, prompt_ids, 24)

    reply = client.chat.completions.create(
        model="smol", messages=user(question), temperature=0, max_tokens=24
    )
    assert reply.choices[0].message.content == expected
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage.prompt_tokens == len(prompt_ids)
    assert reply.usage.completion_tokens == len(new_ids)  # EOS counted, as vLLM counts it
    ended_by_eos = new_ids[-1] == engine.tokenizer.eos_token_id
    assert reply.choices[0].finish_reason == ("stop" if ended_by_eos else "length")

    stream = client.chat.completions.create(
        model="smol",
        messages=user(question),
        temperature=0,
        max_tokens=24,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [reply.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(new_ids)
    assert len({c.id for c in chunks}) == 1


def test_smollm2_finishes_at_eos_with_stop(smol):
    engine, client = smol
    reply = client.chat.completions.create(
        model="smol", messages=user(QUESTIONS[0]), temperature=0, max_tokens=40
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and reply.usage.completion_tokens < 40  # ended by EOS
    assert choice.model_extra["stop_reason"] is None  # vLLM: None for EOS
    assert "Paris" in choice.message.content


def test_smollm2_completion_greedy_is_transformers_generate(smol):
    engine, client = smol
    prompt = "The three primary colours are"
    expected, new_ids = reference_greedy(engine, engine.tokenize(prompt), 16)
    reply = client.completions.create(model="smol", prompt=prompt, temperature=0, max_tokens=16)
    assert reply.choices[0].text == expected
    assert reply.usage.completion_tokens == len(new_ids)
    streamed = client.completions.create(
        model="smol", prompt=prompt, temperature=0, max_tokens=16, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in streamed) == expected


# --- the tiny decoder: parameters, errors, disconnects -------------------------------------------------------


def greedy(client, messages, **kw) -> str:
    reply = client.chat.completions.create(model=TINY, messages=messages, temperature=0, **kw)
    return reply.choices[0].message.content


def test_stop_strings_end_the_text_before_them(tiny_client):
    text = greedy(tiny_client, user("hello there"), max_tokens=40, extra_body={"ignore_eos": True})
    stop = text[12:15]  # a stop string the output really contains
    assert len(stop) == 3, text
    expected = text[: text.find(stop)]

    reply = tiny_client.chat.completions.create(
        model=TINY,
        messages=user("hello there"),
        temperature=0,
        max_tokens=40,
        stop=[stop, "never-said"],
        extra_body={"ignore_eos": True},
    )
    choice = reply.choices[0]
    assert choice.message.content == expected
    assert choice.finish_reason == "stop" and choice.model_extra["stop_reason"] == stop

    # Streamed: text that might begin the stop string is held back, so the stop never leaks into a chunk.
    stream = tiny_client.chat.completions.create(
        model=TINY,
        messages=user("hello there"),
        temperature=0,
        max_tokens=40,
        stop=stop,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"

    completion = (
        tiny_client.completions.create(
            model=TINY, prompt="hello there", temperature=0, max_tokens=40, extra_body={"ignore_eos": True}
        )
        .choices[0]
        .text
    )
    stop = completion[10:13]
    kept = tiny_client.completions.create(
        model=TINY,
        prompt="hello there",
        temperature=0,
        max_tokens=40,
        stop=stop,
        extra_body={"ignore_eos": True, "include_stop_str_in_output": True},
    ).choices[0]
    assert kept.text == completion[: completion.find(stop) + len(stop)]


def test_n_choices_with_a_seed_are_reproducible(tiny_client):
    def sampled(seed, **kw):
        return tiny_client.chat.completions.create(
            model=TINY,
            messages=user("tell me a story"),
            temperature=1.0,
            max_tokens=16,
            n=2,
            seed=seed,
            extra_body={"ignore_eos": True},
            **kw,
        )

    first, again, other = sampled(7), sampled(7), sampled(8)
    texts = [c.message.content for c in first.choices]
    assert [c.index for c in first.choices] == [0, 1]
    assert [c.message.content for c in again.choices] == texts  # same seed, same output
    assert texts[0] != texts[1]  # two samples, not one twice
    assert [c.message.content for c in other.choices] != texts
    assert first.usage.completion_tokens == 32

    # Streamed with the same seed: the same two texts, told apart by their index.
    streamed = {0: "", 1: ""}
    for chunk in sampled(7, stream=True):
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert [streamed[0], streamed[1]] == texts


def test_max_tokens_and_finish_reason_length(tiny_client, tiny_engine):
    reply = tiny_client.chat.completions.create(
        model=TINY, messages=user("count"), temperature=0, max_tokens=5, extra_body={"ignore_eos": True}
    )
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 5
    # completions default to 16 tokens, as in vLLM and OpenAI
    reply = tiny_client.completions.create(model=TINY, prompt="count", extra_body={"ignore_eos": True})
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 16
    # chat defaults to the rest of the model's context: a conversation that leaves 3 tokens gets 3
    target = tiny_engine.max_model_len - 3
    messages = next(
        m
        for k in range(target - 40, target)
        if len(tiny_engine.chat_prompt_ids(m := user(" the" * k))) == target
    )
    reply = tiny_client.chat.completions.create(
        model=TINY, messages=messages, extra_body={"ignore_eos": True}
    )
    assert reply.usage.completion_tokens == 3 and reply.choices[0].finish_reason == "length"


def test_several_prompts_in_one_completion_request(tiny_client):
    prompts = ["one", "two"]
    reply = tiny_client.completions.create(
        model=TINY, prompt=prompts, temperature=0, max_tokens=6, n=2, extra_body={"ignore_eos": True}
    )
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    singles = [
        tiny_client.completions.create(
            model=TINY, prompt=p, temperature=0, max_tokens=6, extra_body={"ignore_eos": True}
        )
        .choices[0]
        .text
        for p in prompts
    ]
    assert [c.text for c in reply.choices] == [singles[0], singles[0], singles[1], singles[1]]


@pytest.mark.parametrize(
    ("path", "request_", "kind"),
    [
        ("/v1/chat/completions", {"messages": user("hi")}, "chat.completion.chunk"),
        ("/v1/completions", {"prompt": "hi"}, "text_completion"),
    ],
)
def test_stream_events_are_vllm_chunks(tiny_url, path, request_, kind):
    options = {"max_tokens": 3, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", tiny_url + path, json={**request_, **options}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert {chunk["object"] for chunk in chunks} == {kind} and len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"]), body
    assert body["error"]["code"] == response.status_code
    return body["error"]


def test_input_over_the_model_length_is_a_400(tiny_client, tiny_url):
    with pytest.raises(openai.BadRequestError, match="maximum context length is 2048 tokens"):
        tiny_client.chat.completions.create(model=TINY, messages=user(LONG_TEXT), max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        tiny_client.completions.create(model=TINY, prompt=LONG_TEXT, max_tokens=4)
    response = httpx.post(tiny_url + "/v1/completions", json={"model": TINY, "prompt": LONG_TEXT})
    assert response.status_code == 400
    assert error_of(response)["type"] == "BadRequestError"
    # Truncated only when the request asks (vLLM's truncate_prompt_tokens).
    reply = tiny_client.completions.create(
        model=TINY, prompt=LONG_TEXT, max_tokens=4, extra_body={"truncate_prompt_tokens": 100}
    )
    assert reply.usage.prompt_tokens == 100
    with pytest.raises(
        openai.BadRequestError, match="max_tokens=5000 cannot be greater than max_model_len=2048"
    ):
        tiny_client.completions.create(model=TINY, prompt="hi", max_tokens=5000)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ('{"model": "tiny", "messages": [', 400, "JSON"),
        ({"model": "tiny", "messages": []}, 400, "messages"),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
            400,
            "temperature",
        ),
        ({"model": "other", "messages": [{"role": "user", "content": "hi"}]}, 404, "`other` does not exist"),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "logprobs": True},
            400,
            "logprobs",
        ),
        ({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stop": [""]}, 400, "stop"),
        (
            {
                "model": "tiny",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            400,
            "image_url",
        ),
    ],
)
def test_bad_chat_requests_get_the_error_shape(tiny_url, body, status, says):
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(
        tiny_url + "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert says in error_of(response)["message"]


def test_stream_client_that_disconnects_stops_the_generation(tiny_url, tiny_client, tiny_engine):
    before = tiny_engine.stats.aborted
    request = {
        "model": TINY,
        "messages": user("go on"),
        "max_tokens": 1900,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.stream("POST", tiny_url + "/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        got = [next(lines) for _ in range(6)]
    assert got[0].startswith("data: ")
    wait_until(lambda: tiny_engine.stats.aborted == before + 1 and tiny_engine.stats.running == 0)
    # The server keeps serving.
    assert greedy(tiny_client, user("still there?"), max_tokens=3, extra_body={"ignore_eos": True})


def test_plain_client_that_disconnects_stops_the_generation(tiny_url, tiny_client, tiny_engine):
    before = tiny_engine.stats.aborted
    body = json.dumps({"model": TINY, "prompt": "go on", "max_tokens": 1900, "ignore_eos": True}).encode()
    host, port = tiny_url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /ml/v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_until(lambda: tiny_engine.stats.running == 1)
    wait_until(lambda: tiny_engine.stats.aborted == before + 1 and tiny_engine.stats.running == 0)
    assert tiny_client.completions.create(model=TINY, prompt="hi", max_tokens=2).choices[0].text is not None


class FailsAfterPrefill:
    """The model, failing at the first decode step: a fault (say, out of memory) not to be caused for real."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, **inputs):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("injected failure")
        return self.model(**inputs)


def test_a_failing_generation_is_an_error_and_serving_goes_on(
    tiny_url, tiny_client, tiny_engine, monkeypatch
):
    request = {"model": TINY, "messages": user("hi"), "max_tokens": 8, "ignore_eos": True}
    model = tiny_engine.model
    monkeypatch.setattr(tiny_engine, "model", FailsAfterPrefill(model))
    response = httpx.post(tiny_url + "/v1/chat/completions", json=request)
    assert response.status_code == 500 and "injected failure" in error_of(response)["message"]

    # Streamed, the 200 has gone out: the error comes as an event in the error shape, then [DONE].
    monkeypatch.setattr(tiny_engine, "model", FailsAfterPrefill(model))
    with httpx.stream(
        "POST", tiny_url + "/v1/chat/completions", json={**request, "stream": True}
    ) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert response.status_code == 200 and events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == 500
    assert "injected failure" in json.loads(events[-2])["error"]["message"]

    monkeypatch.undo()
    assert greedy(tiny_client, user("hi"), max_tokens=2)  # the worker lives on


def test_concurrent_requests_are_queued_and_all_answered(tiny_client):
    from concurrent.futures import ThreadPoolExecutor

    prompts = [f"question number {i}" for i in range(6)]
    alone = [greedy(tiny_client, user(p), max_tokens=8, extra_body={"ignore_eos": True}) for p in prompts]
    with ThreadPoolExecutor(6) as pool:
        together = list(
            pool.map(
                lambda p: greedy(tiny_client, user(p), max_tokens=8, extra_body={"ignore_eos": True}), prompts
            )
        )
    assert together == alone


def test_mg_serve_app_serves_a_causal_lm_folder(tiny_decoder_dir):
    # create_app reads the folder (a *ForCausalLM: generation) and mounts these routes under its own.
    from mg_serve.app import create_app

    with running(create_app(tiny_decoder_dir, served_model_name="tiny-app")) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == ["tiny-app"]
        reply = client.chat.completions.create(model="tiny-app", messages=user("hi"), max_tokens=3)
        assert reply.model == "tiny-app" and reply.usage.completion_tokens <= 3
        with pytest.raises(openai.NotFoundError, match="`tiny` does not exist"):
            client.completions.create(model="tiny", prompt="hi", max_tokens=3)


def test_stop_token_ids_content_parts_and_continuing_a_message(tiny_client, tiny_engine):
    ids = tiny_engine.tokenize("hello")
    tokens = tiny_engine.generate(
        ids, tiny_engine.sampling_params(temperature=0, max_tokens=8, ignore_eos=True)
    )
    stop_id = tokens[0].token_ids[3]
    reply = tiny_client.completions.create(
        model=TINY,
        prompt="hello",
        temperature=0,
        max_tokens=8,
        extra_body={"ignore_eos": True, "stop_token_ids": [stop_id]},
    )
    assert reply.choices[0].finish_reason == "stop" and reply.choices[0].model_extra["stop_reason"] == stop_id
    assert reply.usage.completion_tokens == tokens[0].token_ids.index(stop_id) + 1

    # Content as a list of text parts is the same conversation as the plain string.
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert greedy(tiny_client, parts, max_tokens=6) == greedy(tiny_client, user("hello"), max_tokens=6)

    # Continuing the assistant's message: the prompt ends inside it, and the reply keeps its role.
    messages = [*user("hello"), {"role": "assistant", "content": "Well"}]
    options = {"add_generation_prompt": False, "continue_final_message": True, "ignore_eos": True}
    reply = tiny_client.chat.completions.create(
        model=TINY, messages=messages, temperature=0, max_tokens=4, extra_body=options
    )
    rendered = tiny_engine.render_chat(messages, add_generation_prompt=False, continue_final_message=True)
    assert rendered.endswith("Well") and reply.usage.prompt_tokens == len(tiny_engine.tokenize(rendered))
    assert reply.choices[0].message.role == "assistant"


def test_truncation_keeps_the_side_asked_for(tiny_engine):
    ids = list(range(10, 20))
    assert tiny_engine.fit(ids, 4, truncate_prompt_tokens=3, truncation_side="left") == ([17, 18, 19], 4)
    assert tiny_engine.fit(ids, 4, truncate_prompt_tokens=3, truncation_side="right") == ([10, 11, 12], 4)
    assert tiny_engine.fit(ids, None)[1] == tiny_engine.max_model_len - 10
    with pytest.raises(ValueError, match="out of the model's vocabulary"):
        tiny_engine.fit([10**6], 4)


def test_load_options_and_a_closed_engine(tiny_decoder_dir):
    engine = load_generate_engine(tiny_decoder_dir, dtype="bfloat16", max_model_len=64, device="auto")
    assert engine.model.dtype == torch.bfloat16 and engine.max_model_len == 64
    assert engine.served_model_name == str(tiny_decoder_dir)  # as `vllm serve` names it
    params = engine.sampling_params(max_tokens=3, ignore_eos=True)
    assert len(engine.generate(engine.tokenize("hi"), params)[0].token_ids) == 3  # bf16 runs on CPU too
    with pytest.raises(ValueError, match="maximum context length is 64"):
        engine.complete(" the" * 80)
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.complete("hi")
    with pytest.raises(ValueError, match="longer than the model's context"):
        load_generate_engine(tiny_decoder_dir, max_model_len=4096)


# --- the Python API ---------------------------------------------------------------------------------------


def test_python_api_matches_the_http_api(tiny_engine, tiny_client):
    messages = user("hello")
    over_http = greedy(tiny_client, messages, max_tokens=10, extra_body={"ignore_eos": True})
    assert tiny_engine.chat(messages, temperature=0, max_tokens=10, ignore_eos=True) == over_http
    assert (
        "".join(tiny_engine.chat_stream(messages, temperature=0, max_tokens=10, ignore_eos=True)) == over_http
    )
    text = tiny_engine.complete("hello", temperature=0, max_tokens=10, ignore_eos=True)
    assert (
        text
        == tiny_client.completions.create(
            model=TINY, prompt="hello", temperature=0, max_tokens=10, extra_body={"ignore_eos": True}
        )
        .choices[0]
        .text
    )
    assert tiny_engine.detokenize(tiny_engine.tokenize("hello world")) == "hello world"
    assert tiny_engine.task == "generate" and tiny_engine.served_model_name == TINY
    assert tiny_engine.max_model_len == 2048
    with pytest.raises(ValueError, match="maximum context length"):
        tiny_engine.complete(LONG_TEXT)
    with pytest.raises(ValueError, match="top_p must be in"):
        tiny_engine.chat(messages, top_p=0)


def test_defaults_come_from_generation_config(tiny_decoder_dir, tmp_path):
    # vLLM takes temperature & co. from generation_config.json when the request leaves them out.
    folder = tmp_path / "model"
    shutil.copytree(tiny_decoder_dir, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(
        json.dumps({**config, "temperature": 0.0, "max_new_tokens": 7})
    )
    engine = load_generate_engine(folder)
    try:
        assert engine.sampling_params() == SamplingParams(temperature=0.0, max_tokens=7)
        texts = {engine.complete("hello", ignore_eos=True) for _ in range(2)}
        assert len(texts) == 1  # greedy, without asking
        assert texts == {engine.complete("hello", temperature=0, max_tokens=7, ignore_eos=True)}
    finally:
        engine.close()


def test_repetition_penalty_is_transformers(tiny_engine):
    ids = tiny_engine.tokenize("the cat sat on the mat and the cat")
    choices = tiny_engine.generate(
        ids, tiny_engine.sampling_params(temperature=0, max_tokens=12, repetition_penalty=1.8)
    )
    prompt = torch.tensor([ids])
    reference = tiny_engine.model.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        do_sample=False,
        max_new_tokens=12,
        repetition_penalty=1.8,
    )
    assert choices[0].token_ids == reference[0, len(ids) :].tolist()


def test_sampling_filters_and_penalties():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    generator = torch.Generator().manual_seed(0)

    def draws(**kw) -> set[int]:
        params = SamplingParams(temperature=5.0, **kw)
        return {int(sample(logits, params, generator)) for _ in range(200)}

    assert draws() == {0, 1, 2, 3}  # hot: everything comes up
    assert draws(top_k=2) == {0, 1}
    assert draws(top_p=0.01) == {0}  # the first token alone passes top_p
    assert draws(min_p=0.9) == {0}
    assert sample(logits, SamplingParams(temperature=0), generator).tolist() == [0]

    params = SamplingParams(presence_penalty=0.5, frequency_penalty=1.0, repetition_penalty=2.0)
    penalties = Penalties(params, prompt_ids=[1], n=1, vocab=4, device=torch.device("cpu"))
    penalties.update(torch.tensor([0]))
    penalties.update(torch.tensor([0]))
    # token 0: seen, positive -> 2.0 / 2, then - 1.0 * 2 (twice) - 0.5; token 1: prompt, positive -> 1.0 / 2;
    # token 3: never seen -> unchanged.
    assert penalties.apply(logits).tolist() == [[-1.5, 0.5, 0.5, -1.0]]


def test_incremental_text_is_the_whole_decode(tiny_engine):
    # Characters split over several byte tokens come out whole, once complete; at the last token, as they are.
    tokenizer = tiny_engine.tokenizer
    ids = tokenizer("机器学习很有趣 naïve 😀 café")["input_ids"]
    decoder = IncrementalDecoder(tokenizer, skip_special_tokens=True)
    parts = [decoder.add(token) for token in ids]
    assert "".join(parts) == tokenizer.decode(ids) and "\ufffd" not in "".join(parts)
    assert "" in parts  # some tokens were held back: they end inside a character
    cut = ids[:-1]  # "café" without the second byte of "é"
    decoder = IncrementalDecoder(tokenizer, skip_special_tokens=True)
    text = "".join(decoder.add(token, last=i == len(cut) - 1) for i, token in enumerate(cut))
    assert text == tokenizer.decode(cut) and text.endswith("\ufffd")
