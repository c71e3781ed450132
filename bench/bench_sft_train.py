"""SFT training speed on SmolLM2-135M-Instruct: mg-train packed and unpacked against TRL's SFTTrainer
defaults, measured in the same run.

    uv run --all-packages --all-extras --group bench python bench/bench_sft_train.py [--repeats 3]

The three train the real SmolLM2-135M-Instruct (fp32, CPU) on the same few hundred multi-turn chats ("messages"
rows of 30-400 tokens, built from mg_testing.corpus's customer-service sentences), with AdamW at the same
learning rate, the same number of optimizer steps, about the same number of samples per step and max_length
512; each in its own child process, alternating:
  mg-train packed:    `mg-train config.yaml` (task: sft, packing: true): rows of up to 512 tokens holding
                      several samples, kept apart by a 4D document mask and restarted positions
  mg-train unpacked:  the same with packing: false (one sample per row, padded to the longest in the batch)
  TRL:                SFTTrainer(model=<folder>, args=SFTConfig(...)) with SFTConfig's defaults except bf16=False
                      and gradient_checkpointing=False (CPU; see CHANGED_FROM_TRL_DEFAULTS)

Real tokens per second: the non-padding tokens of the batches the steps received (counted as each step gets
its batch, by one wrapper around transformers.Trainer.training_step, the same in all three children) divided
by the wall time of those steps (the Trainer's per-step log line, logging_steps 1: the run log's time for
mg-train, a TrainerCallback.on_log for TRL). Model loading, data preparation and the first --warmup steps are
left out. Also printed: real tokens per step and the share of padded positions in the measured steps (the
unpacked run and TRL draw the same batches). Results and the card: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Counts the real tokens and the positions (padding included) of every batch as a training step receives it.
# mg-train's collators put `token_mask` (1 = a real token, also for packed rows, whose 4D attention mask cannot
# be summed) in every batch; TRL's collator a 2D attention_mask. Written to TOKENS_OUT at exit, [real,
# positions] per step.
COUNT_TOKENS = """
import atexit, json, os, transformers
_training_step = transformers.Trainer.training_step
_tokens = []

def _counted(self, model, inputs, *args, **kwargs):
    mask = inputs["token_mask"] if "token_mask" in inputs else inputs["attention_mask"]
    _tokens.append([int(mask.sum()), inputs["input_ids"].numel()])
    return _training_step(self, model, inputs, *args, **kwargs)

transformers.Trainer.training_step = _counted
atexit.register(lambda: json.dump(_tokens, open(os.environ["TOKENS_OUT"], "w")))
"""

MG_TRAIN = (
    COUNT_TOKENS
    + """
import sys
from mg_cli.train import main
main(sys.argv[1:])
"""
)

# What differs from SFTConfig's defaults, and why (printed with the results).
CHANGED_FROM_TRL_DEFAULTS = {
    "bf16": (False, "default True: bf16 autocast on a CPU is many times slower than fp32"),
    "gradient_checkpointing": (
        False,
        "default True: recomputing activations only costs time (mg-train: off)",
    ),
    "max_length": (512, "default 1024; every sample here is shorter than 512, so nothing is cut"),
    "per_device_train_batch_size, max_steps, learning_rate, seed": (None, "the run's shared settings"),
    "logging_steps": (1, "default 10: one log line per step gives the step times"),
    "save_strategy, report_to, disable_tqdm": (None, "no checkpoints, reporters or progress bar"),
}

TRL = (
    COUNT_TOKENS
    + """
import json, sys, time
from datasets import Dataset
from transformers import TrainerCallback
import transformers
from trl import SFTConfig, SFTTrainer
transformers.logging.set_verbosity_error()

data, model_dir, run_dir, batch, steps, lr, max_len, times_out, info_out = sys.argv[1:10]
rows = [json.loads(line) for line in open(data, encoding="utf-8")]
times = []

class Clock(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            times.append(time.time())

args = SFTConfig(
    output_dir=run_dir, per_device_train_batch_size=int(batch), max_steps=int(steps), learning_rate=float(lr),
    max_length=int(max_len), bf16=False, gradient_checkpointing=False, logging_steps=1, save_strategy="no",
    report_to="none", seed=0, disable_tqdm=True,
)
trainer = SFTTrainer(model=model_dir, args=args, train_dataset=Dataset.from_list(rows), callbacks=[Clock()])
info = {
    "dtype": str(trainer.model.dtype),
    "attn_implementation": trainer.model.config._attn_implementation,
    **{k: getattr(args, k) for k in ("packing", "padding_free", "assistant_only_loss", "completion_only_loss",
                                       "bf16", "gradient_checkpointing", "learning_rate", "lr_scheduler_type")},
}
json.dump(info, open(info_out, "w"))
trainer.train()
json.dump(times, open(times_out, "w"))
"""
)

SYSTEM_PROMPTS = [
    "You are a friendly customer support assistant for an online shop.",
    "You answer questions about orders, payments, returns and accounts. Be brief and polite.",
    "You are the support agent of a shoe and clothing store. Answer in English.",
]


def make_conversations(n: int, tokenizer, *, shortest: int, longest: int, seed: int = 0) -> list[dict]:
    """n "messages" rows, each grown turn by turn from corpus sentences until it renders (the tokenizer's chat
    template) to at least a length drawn uniformly from [shortest, longest] tokens; always ends with an
    assistant turn. SmolLM2's template adds its own system prompt (~20 tokens) when a row has none."""
    from mg_testing.corpus import ENGLISH

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        target = rng.randint(shortest, longest)
        messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.4 else []
        while True:
            user = " ".join(rng.sample(ENGLISH, rng.randint(1, 2)))
            reply = [rng.choice(ENGLISH)]
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply[0]}]
            # Lengthen the last reply sentence by sentence, then open another turn.
            while length(tokenizer, messages) < target and len(reply) < 6:
                reply.append(rng.choice(ENGLISH))
                messages[-1]["content"] = " ".join(reply)
            if length(tokenizer, messages) >= target:
                break
        rows.append({"messages": messages})
    return rows


def length(tokenizer, messages: list[dict]) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def child(argv: list[str], tokens_out: Path) -> None:
    env = {**os.environ, "TOKENS_OUT": str(tokens_out)}
    proc = subprocess.run(
        [sys.executable, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    if proc.returncode:
        raise SystemExit(f"benchmark child failed ({' '.join(argv[:1] + argv[2:3])}):\n{proc.stderr[-4000:]}")


def rate(times: list[float], tokens: list[list[int]], warmup: int) -> tuple[float, float, float]:
    """(real tokens/s, real tokens per step, share of padded positions) over the steps after the first
    `warmup`: the tokens of steps warmup+2 .. n, over the time from step warmup+1's log line to step n's."""
    if len(times) <= warmup + 1 or len(tokens) != len(times):
        raise SystemExit(
            f"{len(times)} step times and {len(tokens)} token counts; need more than --warmup + 1"
        )
    measured = tokens[warmup + 1 :]
    real, positions = sum(r for r, _ in measured), sum(p for _, p in measured)
    return real / (times[-1] - times[warmup]), real / len(measured), 1 - real / positions


def run_mg_train(config: Path, run_dir: Path, tokens_out: Path) -> tuple[list[float], list[list[int]]]:
    shutil.rmtree(run_dir, ignore_errors=True)
    child(["-c", MG_TRAIN, str(config)], tokens_out)
    records = map(json.loads, (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines())
    times = [r["time"] for r in records if r["split"] == "train" and r["name"] == "loss"]
    return times, json.loads(tokens_out.read_text())


def run_trl(args: list[str], tokens_out: Path) -> tuple[list[float], list[list[int]]]:
    child(["-c", TRL, *args], tokens_out)
    return json.loads(Path(args[-2]).read_text()), json.loads(tokens_out.read_text())


def padding_share(lengths: list[int], batch: int, seed: int = 0) -> float:
    """The share of padded positions in random batches padded to their longest sample."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    real = padded = 0
    for start in range(0, len(order) - batch + 1, batch):
        rows = [lengths[i] for i in order[start : start + batch]]
        real, padded = real + sum(rows), padded + max(rows) * batch
    return 1 - real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=400, help="training conversations")
    parser.add_argument("--shortest", type=int, default=30, help="conversation length drawn from, tokens")
    parser.add_argument("--longest", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8, help="samples per step (packed: rows that hold "
                        "about as many samples on average)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--learning-rate", type=float, default=2e-5, help="default: SFTConfig's")
    parser.add_argument(
        "--train-on", default="all", choices=["all", "assistant"],
        help="mg-train's train_on; `all` matches TRL's default loss (assistant_only_loss=False)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="run the three this many times, alternating")
    parser.add_argument("--model", default=None, help="default: SmolLM2-135M-Instruct from mg-testing")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model is None:
        from mg_testing.real_models import smollm2_dir

        args.model = str(smollm2_dir())
    import torch
    from transformers import AutoTokenizer

    from mg_heads.packing import pack

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = make_conversations(args.conversations, tokenizer, shortest=args.shortest, longest=args.longest)
    lengths = [length(tokenizer, r["messages"]) for r in rows]
    if max(lengths) > args.max_length:
        raise SystemExit(f"a conversation has {max(lengths)} tokens > --max-length {args.max_length}")
    packed_rows = len(pack(lengths, args.max_length))
    per_row = len(rows) / packed_rows
    rows_per_step = max(1, round(args.batch_size / per_row))
    turns = statistics.mean(sum(m["role"] == "user" for m in r["messages"]) for r in rows)
    print(
        f"SmolLM2-135M-Instruct, fp32 CPU ({torch.get_num_threads()} threads); {len(rows)} chats of "
        f"{min(lengths)}-{max(lengths)} tokens (mean {statistics.mean(lengths):.0f}, {turns:.1f} user turns), "
        f"max_length {args.max_length}; {args.steps} steps ({args.warmup} warm-up left out), learning rate "
        f"{args.learning_rate}, loss on {'all tokens' if args.train_on == 'all' else 'assistant turns (mg-train)'}",
        flush=True,
    )
    print(
        f"unpacked and TRL: {args.batch_size} samples/step, {padding_share(lengths, args.batch_size):.0%} of "
        f"the positions of a random batch are padding; packed: {packed_rows} rows of <= {args.max_length} "
        f"tokens ({per_row:.2f} samples each), {rows_per_step} rows/step = {rows_per_step * per_row:.1f} "
        "samples/step on average",
        flush=True,
    )
    results: dict[str, list[tuple[float, float, float]]] = {"packed": [], "unpacked": [], "trl": []}
    trl_info: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "chats.jsonl"
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        configs = {}
        for name, packing in (("packed", True), ("unpacked", False)):
            config = {
                "task": "sft",
                "model_name_or_path": args.model,
                "train_file": str(data),
                "output_dir": str(tmp / name),
                "packing": packing,
                "train_on": args.train_on,
                "per_device_train_batch_size": rows_per_step if packing else args.batch_size,
                "max_steps": args.steps,
                "learning_rate": args.learning_rate,
                "max_length": args.max_length,
                "logging_steps": 1,
                "save_strategy": "no",
                "disable_tqdm": True,
                "seed": 0,
            }
            configs[name] = tmp / f"{name}.yaml"
            configs[name].write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        trl_args = [str(data), args.model, str(tmp / "trl"), str(args.batch_size), str(args.steps)]
        trl_args += [
            str(args.learning_rate),
            str(args.max_length),
            str(tmp / "trl.json"),
            str(tmp / "info.json"),
        ]
        names = list(results)
        for repeat in range(args.repeats):
            for name in names[repeat % 3 :] + names[: repeat % 3]:  # a different one first each repeat
                tokens_out = tmp / f"{name}.tokens.json"
                if name == "trl":
                    times, tokens = run_trl(trl_args, tokens_out)
                    trl_info = json.loads((tmp / "info.json").read_text())
                else:
                    times, tokens = run_mg_train(configs[name], tmp / name, tokens_out)
                results[name].append(rate(times, tokens, args.warmup))
                print(f"  run {repeat + 1} {name}: {results[name][-1][0]:.1f} real tokens/s", flush=True)
    report(results, trl_info, args.repeats)


def report(results: dict[str, list[tuple[float, float, float]]], trl_info: dict, repeats: int) -> None:
    labels = {
        "packed": "mg-train sft, packing: true",
        "unpacked": "mg-train sft, packing: false",
        "trl": "TRL SFTTrainer (defaults, CPU changes below)",
    }
    median = {name: statistics.median(r for r, _, _ in runs) for name, runs in results.items()}
    each = f" (median of {repeats})" if repeats > 1 else ""
    print(f"{'trainer':<48}{'real tokens/s':>14}{each}   real tokens/step   padding")
    for name, label in labels.items():
        runs = [r for r, _, _ in results[name]]
        spread = "[" + ", ".join(f"{r:.1f}" for r in runs) + "]" if len(runs) > 1 else ""
        per_step = statistics.mean(t for _, t, _ in results[name])
        padding = statistics.mean(p for _, _, p in results[name])
        print(f"{label:<48}{median[name]:>14.1f}   {per_step:>16.0f}   {padding:>7.0%}  {spread}")
    print(f"packed / TRL:   {median['packed'] / median['trl']:.2f}x (goal >= 1.5x)")
    print(f"unpacked / TRL: {median['unpacked'] / median['trl']:.2f}x")
    print(f"TRL as it ran: {json.dumps(trl_info)}")
    print("changed from SFTConfig's defaults:")
    for key, (value, why) in CHANGED_FROM_TRL_DEFAULTS.items():
        print(f"  {key}{'' if value is None else '=' + str(value)}: {why}")


if __name__ == "__main__":
    main()
