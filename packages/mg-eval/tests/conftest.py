from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def mg_eval(*args, **kwargs) -> subprocess.CompletedProcess:
    """The real command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mg_eval", *map(str, args)], capture_output=True, text=True, **kwargs
    )


def metrics_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


INTENTS = ["退货", "物流", "发票"]
CLASSIFY_ROWS = [
    {"text": t, "label": lab}
    for t, lab in [
        ("我要退货", "退货"),
        ("快递到哪了", "物流"),
        ("怎么开发票", "发票"),
        ("退款多久到账", "退货"),
        ("物流信息不更新", "物流"),
        ("发票抬头写错了", "发票"),
        ("商品有质量问题想退", "退货"),
        ("催一下发货", "物流"),
    ]
]


@pytest.fixture(scope="module")
def tiny_classifier(tiny_encoder_dir, tmp_path_factory):
    """A randomly initialised BERT-style classifier with named labels, saved the ordinary way."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_encoder_dir,
        num_labels=3,
        id2label=dict(enumerate(INTENTS)),
        label2id={n: i for i, n in enumerate(INTENTS)},
    )
    out = tmp_path_factory.mktemp("clf")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_cross_encoder(tiny_encoder_dir, tmp_path_factory):
    """A random BERT-style cross-encoder (num_labels=1) with problem_type regression, so that transformers,
    sentence-transformers (Identity activation) and vLLM all give the raw score."""
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_encoder_dir, num_labels=1)
    model.config.problem_type = "regression"
    out = tmp_path_factory.mktemp("ce")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(out)
    return out
