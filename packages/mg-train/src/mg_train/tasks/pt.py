"""pt: continued pre-training on raw text; cross-entropy on every token.

Each text ends with the eos token (so the model learns where a document stops); a text longer than max_length
is cut into consecutive chunks; chunks are packed into full rows of max_length tokens, kept apart from each
other (mg_heads.packing): a document never attends to the one packed before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mg_heads.packing import Sample, split_long
from mg_train.tasks.causal_lm import LMTrainer, Rows, collator
from mg_train.tasks.generative import GenerativeConfig, build_causal_lm, export, segments

__all__ = ["Config", "build_model", "export", "prepare", "prepare_tokenizer", "preview", "trainer"]


@dataclass
class Config(GenerativeConfig):
    packing: bool = field(
        default=True,
        metadata={"help": "Pack texts into full rows of max_length tokens, kept apart (false: one per row)."},
    )


@dataclass
class TaskData:
    pass


def prepare(job, train, eval_) -> TaskData:
    return TaskData()


def prepare_tokenizer(job, tokenizer) -> str | None:
    return None  # raw text: no chat template


def build_model(job, data, tokenizer):
    return build_causal_lm(job)


def encode(job, tokenizer, examples: list[dict]) -> list[Sample]:
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    samples: list[Sample] = []
    for ex in examples:
        ids = tokenizer(ex["text"], add_special_tokens=True)["input_ids"] + eos
        samples += split_long(Sample(ids, list(ids)), job.model.max_length)
    return samples


def preview(job, data, tokenizer, examples: list[dict]) -> list[dict]:
    return [
        {
            "segments": segments(tokenizer, s.input_ids, s.labels),
            "label": f"{len(s.input_ids)} tokens, all trained",
        }
        for s in encode(job, tokenizer, examples)
    ]


def trainer(job, data, *, model, tokenizer, train, eval_, callbacks, log):
    packed, length = job.train.packing, job.model.max_length
    samples = encode(job, tokenizer, train)
    rows = Rows(samples, packed=packed, row_length=length)
    if packed:
        log(
            f"packing: {len(train)} texts ({len(samples)} pieces of at most {length} tokens) in {len(rows)} rows "
            f"({rows.tokens() / (len(rows) * length):.0%} full)"
        )
    return LMTrainer(
        model=model,
        args=job.train,
        train_dataset=rows,
        data_collator=collator(tokenizer, model, packed=packed),
        processing_class=tokenizer,
        callbacks=callbacks,
        eval_samples=encode(job, tokenizer, eval_),
    )
