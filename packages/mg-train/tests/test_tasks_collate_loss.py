"""Each task's collate and loss on a few normalized examples (read by mg-data from real rows) with a tiny
model: the batch pairs the right texts with the right labels (the loss equals one computed by hand from each
example alone, unpadded), and the loss is finite, has a gradient and falls after one optimizer step."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from mg_data import iter_examples
from mg_heads.losses.cosent import cosent
from mg_heads.tokenize import ensure_pad_token
from mg_testing.datasets import classify_rows, embed_rows, pair_rows, retrieval_rows, score_rows, write_jsonl
from mg_train.config import parse
from mg_train.tasks import get
from mg_train.tasks.base import render

ATOL = 1e-4  # a padded batch against each example alone: float32 rounding only


def setup(tmp_path, task, model_dir, rows, n=4, **fields):
    """(task module, job, task data, tokenizer, model in eval mode, the first n normalized examples)."""
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    mapping = {"task": task, "model_name_or_path": str(model_dir), "train_file": str(data)}
    job = parse({**mapping, "output_dir": str(tmp_path / "run"), "max_length": 48, **fields})
    module = get(task)
    examples = list(iter_examples(str(data), task))
    task_data = module.prepare(job, examples, [])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ensure_pad_token(tokenizer)
    torch.manual_seed(0)
    model = module.build_model(job, task_data, tokenizer).eval()  # eval: no dropout, so losses compare
    return module, job, task_data, tokenizer, model, examples[:n]


def one(tokenizer, text, pair=None):
    """One example alone: no padding at all."""
    return tokenizer(text, pair, return_tensors="pt", truncation=True, max_length=48)


def check_trains(module, job, model, batch) -> torch.Tensor:
    """The loss is finite, has a gradient, and one SGD step on it lowers it."""
    model = copy.deepcopy(model)
    loss = module.loss(model, dict(batch), job.train)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    # Not every weight: an unused BERT pooler (mean pooling) gets none.
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert (
        grads and all(torch.isfinite(g).all() for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    )
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 1e-3 * p.grad
    assert module.loss(model, dict(batch), job.train) < loss
    return loss


def test_classify(tmp_path, tiny_encoder_dir):
    module, job, data, tok, model, examples = setup(tmp_path, "classify", tiny_encoder_dir, classify_rows())
    batch = module.collate(tok, job, data)(examples)
    assert batch["input_ids"].shape[0] == len(examples) == batch["attention_mask"].shape[0]
    assert [data.labels[i] for i in batch["labels"].tolist()] == [ex["label"] for ex in examples]
    with torch.no_grad():
        logits = torch.cat([model(**one(tok, ex["text"])).logits for ex in examples])
        by_hand = F.cross_entropy(logits, batch["labels"])
        assert module.loss(model, dict(batch), job.train) == pytest.approx(float(by_hand), abs=ATOL)
    check_trains(module, job, model, batch)


def test_rm(tmp_path, tiny_decoder_dir):
    module, job, data, tok, model, examples = setup(tmp_path, "rm", tiny_decoder_dir, pair_rows())
    batch = module.collate(tok, job, data)(examples)
    assert batch["input_ids"].shape[0] == 2 * len(examples)  # chosen rows, then rejected rows
    texts = tok.batch_decode(batch["input_ids"], skip_special_tokens=True)
    for i, ex in enumerate(examples):  # chosen i and rejected i come from the same example
        assert ex["chosen"] in texts[i] and ex["rejected"] in texts[len(examples) + i]

    def reward(messages):
        return model(**one(tok, render(tok, messages))).logits.reshape(())

    with torch.no_grad():
        diff = torch.stack(
            [reward(ex["prompt"] + ex["chosen"]) - reward(ex["prompt"] + ex["rejected"]) for ex in examples]
        )
        by_hand = -F.logsigmoid(diff).mean()
        assert module.loss(model, dict(batch), job.train) == pytest.approx(float(by_hand), abs=ATOL)
    check_trains(module, job, model, batch)


def test_embed(tmp_path, tiny_encoder_dir):
    module, job, data, tok, model, examples = setup(
        tmp_path, "embed", tiny_encoder_dir, embed_rows(), pooling="mean", temperature=0.05
    )
    batch = module.collate(tok, job, data)(examples)
    with torch.no_grad():

        def vec(text):
            return model(**one(tok, text))[0]

        q = torch.stack([vec(ex["query"]) for ex in examples])
        # Every query against every positive, then every hard negative (the row's own positive is right).
        candidates = [ex["positives"][0] for ex in examples] + [ex["negatives"][0] for ex in examples]
        c = torch.stack([vec(t) for t in candidates])
        logits = F.normalize(q, dim=-1) @ F.normalize(c, dim=-1).T / 0.05
        by_hand = F.cross_entropy(logits, torch.arange(len(examples)))
        assert module.loss(model, dict(batch), job.train) == pytest.approx(float(by_hand), abs=ATOL)
    check_trains(module, job, model, batch)


def test_rerank(tmp_path, tiny_encoder_dir):
    module, job, data, tok, model, examples = setup(
        tmp_path, "rerank", tiny_encoder_dir, retrieval_rows(), group_size=3
    )
    batch = module.collate(tok, job, data)(examples)
    assert batch["input_ids"].shape[0] == 3 * len(examples) and int(batch["group_size"]) == 3
    with torch.no_grad():
        scores = torch.stack(
            [
                torch.cat(
                    [
                        model(**one(tok, ex["query"], doc)).logits[0]
                        for doc in [ex["positives"][0], *ex["negatives"][:2]]
                    ]
                )
                for ex in examples
            ]
        )
        by_hand = F.cross_entropy(scores, torch.zeros(len(examples), dtype=torch.long))  # the positive first
        assert module.loss(model, dict(batch), job.train) == pytest.approx(float(by_hand), abs=ATOL)
    check_trains(module, job, model, batch)


@pytest.mark.parametrize("score_loss", ["cosent", "mse"])
def test_score(tmp_path, tiny_encoder_dir, score_loss):
    # Rows with both scores in the first four: cosent needs pairs of different labels to have a loss.
    module, job, data, tok, model, examples = setup(
        tmp_path, "score", tiny_encoder_dir, score_rows(), score_loss=score_loss
    )
    batch = module.collate(tok, job, data)(examples)
    assert batch["labels"].tolist() == [ex["label"] for ex in examples]
    with torch.no_grad():
        pred = torch.cat([model(**one(tok, ex["text_1"], ex["text_2"])).logits[:, 0] for ex in examples])
        labels = torch.tensor([ex["label"] for ex in examples])
        by_hand = cosent(pred, labels) if score_loss == "cosent" else F.mse_loss(pred, labels)
        assert module.loss(model, dict(batch), job.train) == pytest.approx(float(by_hand), abs=ATOL)
    check_trains(module, job, model, batch)
