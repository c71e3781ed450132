"""`mg-train CONFIG.yaml` end to end for every task on real models: data → train → eval during training →
export → the exported folder loaded by the standard loaders (transformers, sentence-transformers)."""

import json

import pytest
import torch
from conftest import metrics, mg_train, series, write_config
from sentence_transformers import CrossEncoder, SentenceTransformer
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from mg_testing.datasets import (
    INTENTS,
    classify_rows,
    embed_rows,
    pair_rows,
    retrieval_rows,
    score_rows,
    write_jsonl,
)

COMMON = {
    "num_train_epochs": 3,
    "per_device_train_batch_size": 8,
    "logging_steps": 1,
    "max_length": 64,
    "save_strategy": "no",
    "eval_strategy": "epoch",
    "load_best_model_at_end": False,
    "seed": 0,
}


def run(tmp_path, task, model_dir, train_rows, eval_rows=None, **extra):
    train = write_jsonl(tmp_path / "train.jsonl", train_rows)
    config = {
        "task": task,
        "model_name_or_path": str(model_dir),
        "train_file": str(train),
        "output_dir": str(tmp_path / "run"),
        **COMMON,
        **extra,
    }
    if eval_rows is not None:
        config["eval_file"] = str(write_jsonl(tmp_path / "eval.jsonl", eval_rows))
    proc = mg_train(write_config(tmp_path / "config.yaml", **config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "run", proc


def loss_went_down(run_dir) -> None:
    losses = series(run_dir, "train", "loss")
    assert len(losses) >= 4
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < first * 0.9, losses


@pytest.mark.slow  # trains (10-20 s here): kept out of `nox -s quick`
def test_classify_minilm_end_to_end(tmp_path, minilm_dir):
    rows = classify_rows(english=True)
    run_dir, proc = run(tmp_path, "classify", minilm_dir, rows, rows[:12], learning_rate=2e-4)
    assert "data preview" in proc.stderr and "label: " in proc.stderr  # shown before step 1
    loss_went_down(run_dir)
    assert series(run_dir, "eval", "accuracy")[-1] > 0.6  # chance: 1/3
    model_dir = run_dir / "model"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    assert set(model.config.id2label.values()) == set(INTENTS)
    assert model.config.problem_type == "single_label_classification"
    tok = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        pred = model(
            **tok(["I want a refund", "where is my parcel"], padding=True, return_tensors="pt")
        ).logits.argmax(-1)
    assert [model.config.id2label[int(i)] for i in pred] == ["退货", "物流"]
    export = json.loads((model_dir / "mg_export.json").read_text(encoding="utf-8"))
    assert export["task"] == "classify" and "vllm serve" in json.dumps(export)
    assert (run_dir / "tb").is_dir() and (run_dir / "samples.jsonl").stat().st_size > 0


@pytest.mark.slow  # trains (10-20 s here): kept out of `nox -s quick`
def test_classify_tiny_decoder_lora(tmp_path, tiny_decoder_dir):
    run_dir, _ = run(
        tmp_path,
        "classify",
        tiny_decoder_dir,
        classify_rows(copies=4),
        classify_rows(1, 1),
        finetuning_type="lora",
        lora_r=8,
        learning_rate=3e-3,
        num_train_epochs=4,
    )
    loss_went_down(run_dir)
    model_dir = run_dir / "model"
    assert not list(model_dir.glob("adapter_*"))  # merged for vLLM
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    assert type(model).__name__ == "Qwen2ForSequenceClassification" and model.score.out_features == 3


@pytest.mark.slow  # over 20 s here: trains
def test_rm_tiny_decoder(tmp_path, tiny_decoder_dir):
    rows = pair_rows()
    run_dir, _ = run(tmp_path, "rm", tiny_decoder_dir, rows * 2, rows, learning_rate=3e-3, num_train_epochs=4)
    loss_went_down(run_dir)
    assert series(run_dir, "eval", "pairwise_accuracy")[-1] > 0.5
    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["num_labels"] == 1 if "num_labels" in config else len(config["id2label"]) == 1
    assert config["problem_type"] == "regression"
    assert not [p for p in (run_dir / "model").rglob("*") if "value_head" in p.name or "v_head" in p.name]


@pytest.mark.parametrize("backbone", ["minilm", "tiny_decoder"])
@pytest.mark.slow  # over 20 s here: trains
def test_embed(tmp_path, backbone, minilm_dir, tiny_decoder_dir):
    model_dir = minilm_dir if backbone == "minilm" else tiny_decoder_dir
    extra = {"learning_rate": 5e-5} if backbone == "minilm" else {"learning_rate": 3e-3, "pooling": "last"}
    rows = embed_rows(english=backbone == "minilm")
    # Each row once per epoch: a duplicate in the batch would be a false in-batch negative.
    run_dir, _ = run(
        tmp_path,
        "embed",
        model_dir,
        rows,
        rows,
        num_train_epochs=6,
        eval_on_start=True,
        per_device_train_batch_size=len(rows),
        **extra,
    )
    eval_loss = series(run_dir, "eval", "loss")  # the same fixed eval batches before and after training
    # Pretrained MiniLM already ranks these well: its loss can only fall a little; a random decoder's falls far.
    assert len(eval_loss) >= 7 and eval_loss[-1] < eval_loss[0] * (0.99 if backbone == "minilm" else 0.5), (
        eval_loss
    )
    assert series(run_dir, "eval", "mrr@10")[-1] > 0.5  # chance over 12-18 documents is about 0.25
    st = SentenceTransformer(str(run_dir / "model"))
    vec = st.encode(["我要退货"], normalize_embeddings=False)
    assert abs(float((vec**2).sum()) - 1.0) < 1e-3  # a Normalize module is in the exported pipeline
    pooling = json.loads((run_dir / "model" / "1_Pooling" / "config.json").read_text())
    key = "pooling_mode_mean_tokens" if backbone == "minilm" else "pooling_mode_lasttoken"
    assert pooling[key] is True


@pytest.mark.slow  # over 20 s here: trains
def test_rerank_minilm(tmp_path, minilm_dir):
    rows = [
        {"query": r["query"], "positive": r["positive"], "negatives": [r["negative_1"], r["negative_2"]]}
        for r in retrieval_rows(english=True)
    ]
    run_dir, _ = run(tmp_path, "rerank", minilm_dir, rows * 3, rows, group_size=3, learning_rate=2e-4)
    loss_went_down(run_dir)
    assert series(run_dir, "eval", "mrr@10")[-1] > 0.8  # chance is (1 + 1/2 + 1/3) / 3 = 0.61
    ce = CrossEncoder(str(run_dir / "model"))
    scores = ce.predict(
        [("I want a refund", rows[0]["positive"]), ("I want a refund", rows[0]["negatives"][0])]
    )
    assert scores[0] > scores[1]


@pytest.mark.slow  # over 20 s here: trains
def test_score_minilm(tmp_path, minilm_dir):
    rows = score_rows(english=True)
    run_dir, _ = run(tmp_path, "score", minilm_dir, rows * 2, rows, learning_rate=2e-4)
    loss_went_down(run_dir)
    assert series(run_dir, "eval", "spearman")[-1] > 0.3


@pytest.mark.slow  # over 20 s here: trains
def test_best_checkpoint_is_selected_and_exported(tmp_path, tiny_encoder_dir):
    rows = classify_rows(copies=2)
    run_dir, _ = run(
        tmp_path,
        "classify",
        tiny_encoder_dir,
        rows,
        rows[:12],
        learning_rate=5e-3,
        num_train_epochs=3,
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
    )
    summary = json.loads((run_dir / "train_summary.json").read_text())
    best = summary["best_checkpoint"]
    accuracies = series(run_dir, "eval", "accuracy")
    assert len(accuracies) == 3  # one per epoch; the re-evaluation of the best is the "final" split
    best_epoch = max(range(3), key=lambda i: (accuracies[i], -i))  # HF keeps the first of equal bests
    assert best.endswith(f"checkpoint-{(best_epoch + 1) * 6}")  # 48 rows / batch 8 = 6 steps per epoch
    final = [m for m in metrics(run_dir) if m["split"] == "final" and m["name"] == "accuracy"]
    assert [(m["step"], m["value"]) for m in final] == [((best_epoch + 1) * 6, accuracies[best_epoch])]
    assert (
        summary["eval_accuracy"] == accuracies[best_epoch] and summary["final_step"] == (best_epoch + 1) * 6
    )
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    batch = tok(["我要退货", "where is my parcel"], padding=True, return_tensors="pt")
    with torch.no_grad():
        exported = (
            AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()(**batch).logits
        )
        chosen = AutoModelForSequenceClassification.from_pretrained(best).eval()(**batch).logits
    torch.testing.assert_close(exported, chosen)
    assert (
        json.loads((run_dir / "model" / "mg_export.json").read_text())["training"]["best_checkpoint"] == best
    )
