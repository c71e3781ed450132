"""sft: supervised fine-tuning on conversations; cross-entropy on the assistant turns (by default).

Conversations (alpaca, sharegpt and messages, with system prompts and tool calls, read by mg-data) are rendered
with the tokenizer's chat template (or `template:`), and the trained spans found by mg_train.chat_template.
`packing: true` packs samples into full rows that keep them apart (mg_heads.packing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mg_heads.packing import Sample
from mg_train.args import at_least, one_of, positive
from mg_train.tasks.causal_lm import LMTrainer, Rows, collator
from mg_train.tasks.generative import GenerativeConfig, build_causal_lm, export, prepare_tokenizer, segments

__all__ = ["Config", "build_model", "export", "prepare", "prepare_tokenizer", "preview", "trainer"]


@dataclass
class Config(GenerativeConfig):
    packing: bool = field(
        default=False,
        metadata={
            "help": "Pack samples into full rows of max_length tokens, kept apart (document mask, positions "
            "restarting per sample, no label across a boundary): same loss, far less padding."
        },
    )
    train_on: Literal["assistant", "last_assistant", "all"] = field(
        default="assistant",
        metadata={"help": "Tokens with loss: every assistant turn, only the last one, or all tokens."},
    )
    eval_generate: int = field(
        default=32,
        metadata={
            "help": "At each evaluation, generate replies for this many eval conversations and score them "
            "(BLEU/ROUGE); 0: loss and perplexity only."
        },
    )
    eval_max_new_tokens: int = field(default=128, metadata={"help": "Tokens generated per eval reply."})
    metrics_style: Literal["sacrebleu", "llamafactory"] = field(
        default="sacrebleu",
        metadata={
            "help": "sacrebleu: corpus BLEU and ROUGE (mg-eval); llamafactory: LLaMA-Factory's definitions "
            "(sentence BLEU-4 on characters, ROUGE on jieba words, averaged per sample, x100)."
        },
    )

    limits = {
        "train_on": one_of("assistant", "last_assistant", "all"),
        "eval_generate": at_least(0),
        "eval_max_new_tokens": positive(),
    }


@dataclass
class TaskData:
    pass


def prepare(job, train, eval_) -> TaskData:
    return TaskData()


def build_model(job, data, tokenizer):
    return build_causal_lm(job)


def encode(job, tokenizer, examples: list[dict], log=None, split: str = "train") -> list[Sample]:
    """Tokenized samples. A conversation cut at max_length is counted; one left with no trained token (its
    reply lies past max_length) teaches nothing and is dropped, and said so."""
    from mg_train.chat_template import tokenize_conversation

    samples, truncated, dropped = [], 0, 0
    limit = job.model.max_length
    for ex in examples:
        ids, labels = tokenize_conversation(tokenizer, ex, train_on=job.train.train_on, max_length=limit)
        truncated += len(ids) >= limit
        if all(x == -100 for x in labels):
            dropped += 1
            continue
        samples.append(Sample(ids, labels))
    if log and truncated:
        log(
            f"{split}: {truncated} of {len(examples)} conversations are longer than max_length {limit} and were "
            f"cut; {dropped} of them kept no trained token and were dropped (raise max_length to keep them)"
        )
    if examples and not samples:
        from mg_train.errors import ConfigError

        raise ConfigError(
            f"{split}: no conversation has a trained token within max_length {limit}", key="max_length"
        )
    return samples


def preview(job, data, tokenizer, examples: list[dict]) -> list[dict]:
    out = []
    for sample in encode(job, tokenizer, examples):
        trained = sum(1 for x in sample.labels if x != -100)
        out.append(
            {
                "segments": segments(tokenizer, sample.input_ids, sample.labels),
                "label": f"{trained} of {len(sample.input_ids)} tokens trained ({job.train.train_on})",
            }
        )
    return out


def trainer(job, data, *, model, tokenizer, train, eval_, callbacks, log):
    samples = encode(job, tokenizer, train, log)
    rows = Rows(samples, packed=job.train.packing, row_length=job.model.max_length)
    if job.train.packing:
        log(
            f"packing: {len(samples)} samples in {len(rows)} rows of {job.model.max_length} tokens "
            f"({rows.tokens() / (len(rows) * job.model.max_length):.0%} full)"
        )
    config = job.train
    generate = None
    if eval_ and config.eval_generate:
        conversations = eval_[: config.eval_generate]
        generate = lambda model: generation_metrics(job, model, tokenizer, conversations)  # noqa: E731
    return LMTrainer(
        model=model,
        args=config,
        train_dataset=rows,
        data_collator=collator(tokenizer, model, packed=job.train.packing),
        processing_class=tokenizer,
        callbacks=callbacks,
        eval_samples=encode(job, tokenizer, eval_, log, split="eval"),
        generate_eval=generate,
    )


def generation_metrics(job, model, tokenizer, conversations: list[dict]) -> dict[str, float]:
    """Greedy replies to each eval conversation's last user turn, scored against its last assistant reply."""
    from mg_eval.metrics.generation import generation_metrics as score

    predictions = generate_replies(
        model,
        tokenizer,
        conversations,
        max_new_tokens=job.train.eval_max_new_tokens,
        batch_size=job.train.per_device_eval_batch_size,
    )
    references = [c["messages"][-1]["content"] for c in conversations]
    return score(predictions, references, style=job.train.metrics_style)


def generate_replies(model, tokenizer, conversations, *, max_new_tokens: int, batch_size: int) -> list[str]:
    import torch

    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # generation continues every row from its last real token
    replies: list[str] = []
    try:
        for i in range(0, len(conversations), batch_size):
            chunk = conversations[i : i + batch_size]
            texts = [
                tokenizer.apply_chat_template(
                    c["messages"][:-1], tools=c.get("tools"), add_generation_prompt=True, tokenize=False
                )
                for c in chunk
            ]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
                model.device
            )
            with torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[:, batch["input_ids"].shape[1] :]
            replies += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return replies
