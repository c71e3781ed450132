"""What serving float32 weights in float16 / bfloat16 costs in agreement with float32, per kind of model.

    HF_HUB_OFFLINE=1 uv run --all-packages --all-extras python bench/measure_serving_dtype.py

transformers only (no vLLM), on the CPU, with the real models of mg-testing:
  embedder:   all-MiniLM-L6-v2, mean-pooled and L2-normalized as its modules.json says, on the 40 English
              sentences of mg_testing.corpus: the lowest cosine between a row's float32 and low-precision vectors
  classifier: all-MiniLM-L6-v2 as BertForSequenceClassification with a seeded random 4-class head, scaled so
              the float32 logits have standard deviation 2 over the inputs (varied probabilities, not all
              near 1/4), softmax: the largest absolute change of a probability
  reward:     SmolLM2-135M-Instruct as LlamaForSequenceClassification with a seeded random 1-output head,
              scaled so the float32 scores have standard deviation 1 over the inputs; 3 customer questions,
              each with 8 candidate replies from the corpus (chat template, reply as the assistant's turn):
              the largest absolute change of a score; how many of the 3 rankings of 8, of their 84 pairs,
              and of the 3 best replies change
  generator:  SmolLM2-135M-Instruct, greedy decoding of up to --new-tokens tokens (or end of sequence) for 6
              chat prompts, one at a time (no padding): how many outputs differ from float32's, and at which token the first
              difference comes

Each model is loaded once in float32 (the dtype the checkpoints are saved in) and copied to the lower dtype
with `.to(dtype)`, the cast `from_pretrained(..., dtype=...)` and vLLM apply when they load float32 weights.
Outputs are compared in float32 (hidden states, logits and scores are cast up before pooling / softmax).
CPU kernels are not GPU kernels: the size of the differences on a GPU differs (see packages/mg-serve/README.md,
"Serving dtype and agreement"), and CPU timings of float16 say nothing about GPU speed, so none are printed.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import time

import torch
import torch.nn.functional as F
import transformers
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from mg_testing.corpus import ENGLISH
from mg_testing.real_models import minilm_dir, smollm2_dir

LOW = {"bfloat16": torch.bfloat16, "float16": torch.float16}
SEED = 0
QUESTIONS = [
    "When will I receive my refund?",
    "Can I change the delivery address after placing the order?",
    "What are your customer service hours?",
]
PROMPTS = QUESTIONS + [
    "I ordered a pair of shoes last week and they have not arrived yet.",
    "The item arrived damaged. The screen is cracked.",
    "How do I apply a discount code at checkout?",
]
REPLIES_PER_QUESTION = 8


def lowered(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    return copy.deepcopy(model).to(dtype).eval()


def seeded_head(linear: torch.nn.Linear) -> None:
    """A random head that does not depend on the global RNG (so it is the same in every run)."""
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator))
        if linear.bias is not None:
            linear.bias.zero_()


def rescale_head(linear: torch.nn.Linear, outputs: torch.Tensor, target_std: float) -> None:
    # The head is linear and its bias zero: scaling the weight scales the outputs by the same factor.
    with torch.no_grad():
        linear.weight.mul_(target_std / outputs.float().std().item())


@torch.inference_mode()
def mean_pooled(model, batch) -> torch.Tensor:
    hidden = model(**batch).last_hidden_state.float()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


@torch.inference_mode()
def logits_of(model, batch) -> torch.Tensor:
    return model(**batch).logits.float()


def measure_embedder() -> dict[str, str]:
    folder = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    batch = tokenizer(ENGLISH, padding=True, return_tensors="pt")
    reference = mean_pooled(model, batch)
    results = {}
    for name, dtype in LOW.items():
        cosines = (mean_pooled(lowered(model, dtype), batch) * reference).sum(-1)
        results[name] = f"min cosine {cosines.min().item():.6f} (1 - min = {1 - cosines.min().item():.1e})"
    return results


def measure_classifier() -> dict[str, str]:
    folder = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=4, dtype=torch.float32
    ).eval()
    batch = tokenizer(ENGLISH, padding=True, return_tensors="pt")
    seeded_head(model.classifier)
    rescale_head(model.classifier, logits_of(model, batch), target_std=2.0)
    reference = logits_of(model, batch).softmax(-1)
    top = reference.max(-1).values
    results = {"float32": f"top probability {top.min().item():.2f}..{top.max().item():.2f} over the inputs"}
    for name, dtype in LOW.items():
        probs = logits_of(lowered(model, dtype), batch).softmax(-1)
        changed = (probs.argmax(-1) != reference.argmax(-1)).sum().item()
        results[name] = (
            f"probability max abs diff {(probs - reference).abs().max().item():.1e}, "
            f"{changed} of {len(ENGLISH)} top classes changed"
        )
    return results


def chat_prefix(tokenizer, question: str) -> str:
    messages = [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def reward_batches(tokenizer) -> list[dict[str, torch.Tensor]]:
    """One right-padded batch per question: the question with each of 8 corpus replies."""
    replies = [text for text in ENGLISH if not text.endswith("?")]
    batches = []
    for index, question in enumerate(QUESTIONS):
        chosen = replies[index * REPLIES_PER_QUESTION : (index + 1) * REPLIES_PER_QUESTION]
        texts = [chat_prefix(tokenizer, question) + reply for reply in chosen]
        batches.append(tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False))
    return batches


def measure_reward(folder) -> dict[str, str]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "right"
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, dtype=torch.float32
    ).eval()
    # The pooled row is the last token that is not padding; the checkpoint's config names the pad id.
    model.config.pad_token_id = tokenizer.pad_token_id
    batches = reward_batches(tokenizer)
    seeded_head(model.score)
    rescale_head(model.score, torch.cat([logits_of(model, b) for b in batches]), target_std=1.0)
    reference = [logits_of(model, b).squeeze(-1) for b in batches]
    closest = min(s.sort().values.diff().min().item() for s in reference)
    results = {"float32": f"closest two scores of one question {closest:.3f} apart"}
    for name, dtype in LOW.items():
        low = lowered(model, dtype)
        scores = [logits_of(low, b).squeeze(-1) for b in batches]
        worst = max((s - r).abs().max().item() for s, r in zip(scores, reference, strict=True))
        pairs = [swapped_pairs(s, r) for s, r in zip(scores, reference, strict=True)]
        best = sum(int(s.argmax() != r.argmax()) for s, r in zip(scores, reference, strict=True))
        results[name] = (
            f"score max abs diff {worst:.4f} (scores' std 1); "
            f"{sum(1 for n in pairs if n)} of {len(QUESTIONS)} rankings of {REPLIES_PER_QUESTION} changed, "
            f"{sum(pairs)} of {len(QUESTIONS) * REPLIES_PER_QUESTION * (REPLIES_PER_QUESTION - 1) // 2} "
            f"pairs swapped, best reply changed for {best} of {len(QUESTIONS)}"
        )
    return results


def swapped_pairs(scores: torch.Tensor, reference: torch.Tensor) -> int:
    """How many pairs of replies the scores order the other way round than the reference does."""
    order = torch.sign(scores[:, None] - scores[None, :])
    reference_order = torch.sign(reference[:, None] - reference[None, :])
    return int((order != reference_order).triu(diagonal=1).sum().item())


@torch.inference_mode()
def greedy(model, tokenizer, prompts: list[str], new_tokens: int) -> list[list[int]]:
    outputs = []
    for prompt in prompts:
        enc = tokenizer(chat_prefix(tokenizer, prompt), return_tensors="pt", add_special_tokens=False)
        ids = model.generate(
            **enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        outputs.append(ids[0, enc["input_ids"].shape[1] :].tolist())
    return outputs


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The 1-based position of the first differing token (one output ending earlier, at end of sequence,
    differs there), None when the two are the same."""
    if a == b:
        return None
    return next(
        (i + 1 for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)) + 1
    )


def measure_generator(folder, new_tokens: int) -> dict[str, str]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    reference = greedy(model, tokenizer, PROMPTS, new_tokens)
    results = {}
    for name, dtype in LOW.items():
        outputs = greedy(lowered(model, dtype), tokenizer, PROMPTS, new_tokens)
        where = [first_difference(o, r) for o, r in zip(outputs, reference, strict=True)]
        diverged = sorted(w for w in where if w is not None)
        at = f", first differing token at {diverged}" if diverged else ""
        results[name] = (
            f"{len(diverged)} of {len(PROMPTS)} greedy outputs (up to {new_tokens} tokens) differ{at}"
        )
    return results


def cpu_name() -> str:
    # platform.processor() says only "x86_64" on Linux; /proc/cpuinfo names the model.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cpu = cpu_name()
    return (
        f"{datetime.date.today()}, {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"(threads {torch.get_num_threads()}), transformers {transformers.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new-tokens", type=int, default=32, help="greedy tokens per prompt (generator)")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()  # the heads are new on purpose: no "newly initialized" notes
    transformers.logging.disable_progress_bar()
    smollm2 = smollm2_dir()
    print(machine())
    for kind, measure in [
        ("embedder (all-MiniLM-L6-v2)", measure_embedder),
        ("classifier (all-MiniLM-L6-v2, random 4-class head)", measure_classifier),
        ("reward model (SmolLM2-135M, random 1-output head)", lambda: measure_reward(smollm2)),
        ("generator (SmolLM2-135M-Instruct)", lambda: measure_generator(smollm2, args.new_tokens)),
    ]:
        start = time.perf_counter()
        results = measure()
        # The wall time of the whole comparison, to plan a run; not a speed of any dtype (see the docstring).
        print(f"\n{kind} [{time.perf_counter() - start:.0f} s]")
        for dtype, result in results.items():
            print(f"  {dtype:9} {result}", flush=True)


if __name__ == "__main__":
    main()
