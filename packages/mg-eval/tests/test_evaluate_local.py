"""`mg-eval run --model` on real model folders, checked against the standard loaders used directly."""

import json

import numpy as np
import pytest
import torch
from conftest import CLASSIFY_ROWS, INTENTS, metrics_json, mg_eval, write_jsonl
from sentence_transformers import CrossEncoder
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer


@pytest.mark.slow  # 20-28 s here: `mg-eval run` and the peer library each load the model
def test_classify_matches_transformers_and_sklearn(tiny_classifier, tmp_path):
    data = write_jsonl(tmp_path / "test.jsonl", CLASSIFY_ROWS)
    got = metrics_json(
        mg_eval(
            "run",
            "--task",
            "classify",
            "--model",
            tiny_classifier,
            "--data",
            data,
            "--batch-size",
            "3",
            "--predictions",
            tmp_path / "pred.jsonl",
        )
    )
    tok = AutoTokenizer.from_pretrained(tiny_classifier)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    with torch.no_grad():
        logits = model(**tok([r["text"] for r in CLASSIFY_ROWS], padding=True, return_tensors="pt")).logits
    expected = [INTENTS[i] for i in logits.argmax(-1).tolist()]
    truth = [r["label"] for r in CLASSIFY_ROWS]
    assert got["examples"] == 8
    assert got["accuracy"] == pytest.approx(accuracy_score(truth, expected))
    assert got["f1_macro"] == pytest.approx(f1_score(truth, expected, average="macro", zero_division=0))
    preds = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["prediction"] for p in preds] == expected


@pytest.mark.slow  # 20-28 s here: `mg-eval run` and the peer library each load the model
def test_rerank_scores_are_the_cross_encoders(tiny_cross_encoder, tmp_path):
    folder = tiny_cross_encoder
    rows = [
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
    ]
    data = write_jsonl(tmp_path / "r.jsonl", rows)
    got = metrics_json(
        mg_eval(
            "run",
            "--task",
            "rerank",
            "--model",
            folder,
            "--data",
            data,
            "--predictions",
            tmp_path / "p.jsonl",
        )
    )
    ce = CrossEncoder(str(folder))
    preds = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    mrr = []
    for row, pred in zip(rows, preds, strict=True):
        docs = [row["positive"], *row["negatives"]]
        ref = ce.predict([(row["query"], d) for d in docs], activation_fn=torch.nn.Identity())
        np.testing.assert_allclose(pred["scores"], ref, atol=1e-4)
        rank = 1 + sum(s > ref[0] for s in ref[1:])  # the positive is document 0
        mrr.append(1 / rank)
    assert got["mrr@10"] == pytest.approx(np.mean(mrr))


@pytest.mark.slow  # 20-28 s here: `mg-eval run` and the peer library each load the model
def test_embed_retrieval_with_real_minilm_beats_chance(minilm_dir, tmp_path):
    pairs = [
        ("How do I reset my password?", "Click 'forgot password' on the login page to reset it."),
        ("When will my parcel arrive?", "Deliveries usually arrive within three business days."),
        ("Can I get a refund?", "Refunds are issued to the original payment method."),
        ("Do you ship abroad?", "We ship to over fifty countries worldwide."),
        ("How do I change my email address?", "You can update your email in account settings."),
        ("Is there a student discount?", "Students get ten percent off with a valid ID."),
        ("What are your opening hours?", "Our stores open from 9am to 9pm every day."),
        ("How can I cancel my order?", "Orders can be cancelled before they are shipped."),
    ]
    rows = [{"query": q, "pos": [p], "neg": []} for q, p in pairs]
    got = metrics_json(
        mg_eval(
            "run", "--task", "embed", "--model", minilm_dir, "--data", write_jsonl(tmp_path / "e.jsonl", rows)
        )
    )
    assert got["recall@1"] >= 0.875  # chance is 1/8
    assert got["ndcg@10"] > 0.9


@pytest.mark.slow  # 20-28 s here: `mg-eval run` and the peer library each load the model
def test_score_with_an_embedding_model_is_cosine(minilm_dir, tmp_path):
    rows = [
        {"sentence1": "A man is playing a guitar.", "sentence2": "A person plays the guitar.", "score": 4.8},
        {"sentence1": "A woman is cooking dinner.", "sentence2": "Someone is preparing food.", "score": 3.9},
        {"sentence1": "A dog runs in the park.", "sentence2": "The stock market fell today.", "score": 0.1},
        {"sentence1": "Kids are swimming.", "sentence2": "Children swim in a pool.", "score": 4.5},
        {"sentence1": "The car is red.", "sentence2": "A cat sleeps on the sofa.", "score": 0.3},
    ]
    got = metrics_json(
        mg_eval(
            "run", "--task", "score", "--model", minilm_dir, "--data", write_jsonl(tmp_path / "s.jsonl", rows)
        )
    )
    assert got["spearman"] > 0.8


@pytest.mark.slow  # 20-28 s here: `mg-eval run` and the peer library each load the model
def test_rm_pairwise_accuracy_uses_the_reward_head(tiny_decoder_dir, tmp_path):
    torch.manual_seed(2)
    folder = tmp_path / "rm"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_decoder_dir, num_labels=1)
    model.config.problem_type = "regression"
    model.save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    tok.save_pretrained(folder)
    rows = [
        {"prompt": "写一句问候：", "chosen": "您好，祝您今天愉快！", "rejected": "走开"},
        {"prompt": "1+1=", "chosen": "2", "rejected": "3"},
        {"prompt": "Say hi: ", "chosen": "Hello there!", "rejected": "no"},
    ]
    got = metrics_json(
        mg_eval(
            "run",
            "--task",
            "rm",
            "--model",
            folder,
            "--data",
            write_jsonl(tmp_path / "p.jsonl", rows),
            "--batch-size",
            "2",
        )
    )
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():

        def reward(text):
            return model(**tok(text, return_tensors="pt")).logits[0, 0].item()

        margins = [reward(r["prompt"] + r["chosen"]) - reward(r["prompt"] + r["rejected"]) for r in rows]
    assert got["pairwise_accuracy"] == pytest.approx(np.mean([m > 0 for m in margins]))
    assert got["mean_margin"] == pytest.approx(np.mean(margins), abs=1e-4)


@pytest.mark.slow  # SmolLM2 generates every answer: 100 s here
def test_sft_generation_metrics_with_smollm2(smollm2_dir, tmp_path):
    rows = [
        {"prompt": "What is the capital of France?", "response": "The capital of France is Paris."},
        {"prompt": "What is 2 + 2?", "response": "2 + 2 = 4."},
    ]
    got = metrics_json(
        mg_eval(
            "run",
            "--task",
            "sft",
            "--model",
            smollm2_dir,
            "--data",
            write_jsonl(tmp_path / "s.jsonl", rows),
            "--max-new-tokens",
            "12",
            "--predictions",
            tmp_path / "p.jsonl",
        )
    )
    preds = [
        json.loads(line)["prediction"]
        for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert "Paris" in preds[0]
    assert 1.0 < got["perplexity"] < 50  # a real instruct model finds these answers likely
    assert got["rouge1"] > 0 and 0 <= got["bleu"] <= 100


def test_bad_rows_fail_before_the_model_loads(tmp_path):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"text": "ok", "label": "a"}, {"text": "", "label": "b"}])
    proc = mg_eval("run", "--task", "classify", "--model", tmp_path / "no-such-model", "--data", data)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == f"{data}:2: text is empty"


def test_model_and_endpoint_are_exclusive(tmp_path):
    proc = mg_eval("run", "--task", "classify", "--data", tmp_path / "x.jsonl")
    assert proc.returncode == 2 and "give exactly one of --model DIR or --endpoint URL" in proc.stderr


def test_unreachable_endpoint_is_one_line(tmp_path):
    data = write_jsonl(tmp_path / "e.jsonl", [{"query": "q", "pos": ["p"]}])
    proc = mg_eval("run", "--task", "embed", "--endpoint", "http://127.0.0.1:9", "--data", data)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: http://127.0.0.1:9/v1/models: cannot reach the endpoint")
