"""Embedding training speed: mg-train's embed trainer against sentence-transformers'
MultipleNegativesRankingLoss, measured in the same run.

    uv run --all-packages --all-extras --group bench python bench/bench_embed_train.py [--repeats 3]

Both fine-tune all-MiniLM-L6-v2 (fp32, CPU) on the same few thousand templated FAQ (query, answer) pairs
with in-batch negatives at scale 20 (temperature 0.05), AdamW at the same learning rate, the same batch
size, the same max length and the same number of steps; each in its own child process:
  mg-train:               `mg-train config.yaml` (task: embed), step times from its run log
  sentence-transformers:  SentenceTransformerTrainer + MultipleNegativesRankingLoss, step times from a
                          callback at the same point (the Trainer's per-step log)
The first --warmup steps are left out. Prints examples/s of each and the ratio (goal: mg-train >= 1.3x),
and the retrieval quality of both trained models on --heldout pairs that neither saw (each held-out query
against all held-out answers, encoded by sentence-transformers from the saved folders): NDCG@10, MRR@10.

mg-train's embed task computes little on padding: it draws batches of similar length from random groups of
4 batches (its default train_sampling_strategy: group_by_length) and encodes each column of a batch in
chunks of similar length (mg_heads.length_groups). Results and the card: bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ITEMS = [
    "order", "parcel", "invoice", "refund", "subscription", "password", "account", "gift card",
    "delivery address", "payment method", "return label", "warranty", "membership", "coupon",
    "phone number", "email address", "loyalty points", "shopping cart", "wish list", "review",
]  # fmt: skip
ASKS = [
    ("How do I change my {item}?", "You can change your {item} under Settings > {Item} at any time."),
    ("Where can I find my {item}?", "Your {item} is listed on the {Item} page of your account."),
    ("Why was my {item} rejected?", "A {item} is rejected when its details do not match our records."),
    ("Can I cancel my {item}?", "Yes, a {item} can be cancelled within 14 days from the {Item} page."),
    ("How long does a {item} take?", "Processing a {item} usually takes three to five business days."),
    ("Who do I contact about my {item}?", "For {item} questions, chat with the {Item} support team."),
    ("Is there a fee for my {item}?", "There is no fee for a {item} unless you choose express handling."),
    ("My {item} is not working, what now?", "If your {item} fails, reset it from the {Item} settings."),
]
CHANNELS = ["", " on the app", " on the website", " from abroad", " as a business customer"]
MOODS = ["", " Please help.", " Thanks!", " It is urgent.", " I tried twice already."]
DETAILS = [
    "Changes made on the website show up in the app within a few minutes.",
    "Business customers can also ask their account manager to do this for them.",
    "If you live outside the EU, local rules may add a few days to the usual time.",
    "We send a confirmation email once the request has been processed.",
    "Keep the reference number from that email in case you need to contact us later.",
    "Requests made on weekends or public holidays are handled on the next working day.",
]


def make_pairs(n: int, seed: int = 0) -> list[dict]:
    """n distinct (query, answer) pairs; every answer is unique, so in-batch negatives are true negatives.
    Queries are short (8-20 tokens), answers of one to four sentences (15-80 tokens), as in FAQ data."""
    rng = random.Random(seed)
    pairs = []
    for item, (q, a), channel, mood in itertools.product(ITEMS, ASKS, CHANNELS, MOODS):
        fill = {"item": item, "Item": item.title()}
        query = q.format(**fill).rstrip("?") + channel + "?" + mood
        answer = a.format(**fill).rstrip(".") + (f" This also applies{channel}." if channel else ".")
        answer += "".join(" " + d for d in rng.sample(DETAILS, rng.randint(0, 3)))
        pairs.append({"query": query, "positive": answer + (f" ({mood.strip()})" if mood else "")})
    rng.shuffle(pairs)
    if n > len(pairs):
        raise SystemExit(f"at most {len(pairs)} distinct pairs")
    return pairs[:n]


SENTENCE_TRANSFORMERS = """
import json, sys, time
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers import SentenceTransformerTrainingArguments, losses
from transformers import TrainerCallback
import transformers
transformers.logging.set_verbosity_error()

data, model_dir, run_dir, batch, steps, lr, max_len, out, saved = sys.argv[1:10]
rows = [json.loads(line) for line in open(data, encoding="utf-8")]
dataset = Dataset.from_dict({"anchor": [r["query"] for r in rows], "positive": [r["positive"] for r in rows]})
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = int(max_len)
times = []

class Clock(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            times.append(time.time())

args = SentenceTransformerTrainingArguments(
    output_dir=run_dir, per_device_train_batch_size=int(batch), max_steps=int(steps), learning_rate=float(lr),
    logging_steps=1, save_strategy="no", report_to="none", seed=0, dataloader_drop_last=True,
    disable_tqdm=True, use_cpu=True,
)
loss = losses.MultipleNegativesRankingLoss(model, scale=20.0)
SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[Clock()]).train()
json.dump(times, open(out, "w"))
model.save(saved)
"""


def rate(times: list[float], batch: int, warmup: int) -> float:
    if len(times) <= warmup + 1:
        raise SystemExit(f"only {len(times)} steps logged; need more than --warmup + 1")
    return batch * (len(times) - 1 - warmup) / (times[-1] - times[warmup])


def child(*argv: str) -> None:
    proc = subprocess.run(
        [sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    if proc.returncode:
        raise SystemExit(f"benchmark child failed ({argv[:2]}):\n{proc.stderr[-3000:]}")


def mg_train_times(config: Path, run_dir: Path) -> list[float]:
    """`mg-train config.yaml`; the step times are those of its run log (one train loss record a step)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    child("-m", "mg_cli.train", str(config))
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines())
    return [r["time"] for r in records if r["split"] == "train" and r["name"] == "loss"]


def sentence_transformers_times(*args: str) -> list[float]:
    child("-c", SENTENCE_TRANSFORMERS, *args)
    return json.loads(Path(args[-2]).read_text())


def retrieval_quality(model_dir: Path, heldout: list[dict]) -> dict[str, float]:
    """NDCG@10 and MRR@10 of each held-out query against every held-out answer (one relevant each)."""
    from sentence_transformers import SentenceTransformer

    from mg_eval.metrics.retrieval import ndcg_at_k, reciprocal_rank_at_k

    model = SentenceTransformer(str(model_dir), device="cpu")
    queries = model.encode([p["query"] for p in heldout], normalize_embeddings=True, convert_to_tensor=True)
    answers = model.encode(
        [p["positive"] for p in heldout], normalize_embeddings=True, convert_to_tensor=True
    )
    ranked = (queries @ answers.T).argsort(dim=1, descending=True)[:, :10].tolist()
    ndcg = mrr = 0.0
    for i, top in enumerate(ranked):
        grades = [1.0 if doc == i else 0.0 for doc in top]
        ndcg += ndcg_at_k(grades, [1.0], 10)
        mrr += reciprocal_rank_at_k(grades, 10)
    return {"ndcg@10": ndcg / len(ranked), "mrr@10": mrr / len(ranked)}


def padding_share(pairs: list[dict], model: str, batch: int, max_length: int) -> float:
    """The share of padded positions in random batches (each column padded to its longest row)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    order = list(range(len(pairs)))
    random.Random(0).shuffle(order)
    real = padded = 0
    for column in ("query", "positive"):
        lengths = [
            len(ids)
            for ids in tok([p[column] for p in pairs], truncation=True, max_length=max_length)["input_ids"]
        ]
        for start in range(0, len(order) - batch + 1, batch):
            rows = [lengths[i] for i in order[start : start + batch]]
            real, padded = real + sum(rows), padded + max(rows) * batch
    return 1 - real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3400, help="training pairs")
    parser.add_argument("--heldout", type=int, default=600, help="pairs kept out of training, for quality")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two this many times")
    parser.add_argument("--model", default=None, help="default: all-MiniLM-L6-v2 from mg-testing")
    args = parser.parse_args()
    if args.model is None:
        from mg_testing.real_models import minilm_dir

        args.model = str(minilm_dir())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    pairs = make_pairs(args.pairs + args.heldout)
    pairs, heldout = pairs[: args.pairs], pairs[args.pairs :]
    share = padding_share(pairs, args.model, args.batch_size, args.max_length)
    print(
        f"all-MiniLM-L6-v2, fp32 CPU ({torch.get_num_threads()} threads), {args.pairs} pairs, batch "
        f"{args.batch_size}, {args.steps} steps ({args.warmup} warm-up steps left out); "
        f"{share:.0%} of the positions in a batch are padding",
        flush=True,
    )
    rates: dict[str, list[float]] = {"mg": [], "st": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "pairs.jsonl"
        with open(data, "w", encoding="utf-8") as f:
            for row in pairs:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        config = {
            "task": "embed",
            "model_name_or_path": args.model,
            "train_file": str(data),
            "output_dir": str(tmp / "mg"),
            "per_device_train_batch_size": args.batch_size,
            "max_steps": args.steps,
            "learning_rate": args.learning_rate,
            "max_length": args.max_length,
            "temperature": 0.05,
            "logging_steps": 1,
            "save_strategy": "no",
            "dataloader_drop_last": True,
            "disable_tqdm": True,
            "seed": 0,
        }
        (tmp / "mg.yaml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        st_args = [str(data), args.model, str(tmp / "st"), str(args.batch_size), str(args.steps)]
        st_args += [
            str(args.learning_rate),
            str(args.max_length),
            str(tmp / "st.json"),
            str(tmp / "st-model"),
        ]
        for _ in range(args.repeats):
            mg = mg_train_times(tmp / "mg.yaml", tmp / "mg")
            rates["mg"].append(rate(mg, args.batch_size, args.warmup))
            st = sentence_transformers_times(*st_args)
            rates["st"].append(rate(st, args.batch_size, args.warmup))
        quality = {
            "mg": retrieval_quality(tmp / "mg" / "model", heldout),
            "st": retrieval_quality(tmp / "st-model", heldout),
            "untrained": retrieval_quality(Path(args.model), heldout),
        }
    mg_rate, st_rate = statistics.median(rates["mg"]), statistics.median(rates["st"])
    each = f" (median of {args.repeats})" if args.repeats > 1 else ""
    print(f"{'trainer':<46}{'examples/s':>12}{each}")
    print(f"{'mg-train embed (InfoNCE, in-batch negatives)':<46}{mg_rate:>12.1f}  {_all(rates['mg'])}")
    print(f"{'sentence-transformers MNRL':<46}{st_rate:>12.1f}  {_all(rates['st'])}")
    print(f"speed ratio mg-train / sentence-transformers: {mg_rate / st_rate:.2f}x (goal >= 1.3x)")
    print(f"held-out retrieval ({len(heldout)} queries against {len(heldout)} answers):")
    names = {"untrained": "all-MiniLM-L6-v2 before training", "mg": "mg-train", "st": "sentence-transformers"}
    for key, name in names.items():
        print(f"  {name:<36} NDCG@10 {quality[key]['ndcg@10']:.4f}  MRR@10 {quality[key]['mrr@10']:.4f}")


def _all(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in values) + "]" if len(values) > 1 else ""


if __name__ == "__main__":
    main()
