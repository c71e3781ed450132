"""What every pooling task shares: the Config base and tokenization. Evaluation during training goes through
mg-eval's LocalModel (each task module's `backend`), the same code as `mg-eval run --model`."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from mg_eval.backends.local import render  # noqa: F401  one chat rendering for collators and evaluation


@dataclass
class TaskConfig(TrainingArguments):
    """TrainingArguments with the defaults that differ for pooling tasks on any machine (CPU included)."""

    # Our collators build tensors from normalized examples; the Trainer must not drop their fields.
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep example fields for the collator."}
    )
    # mg-eval's run log writes metrics.jsonl and TensorBoard; HF's own reporters would duplicate them.
    report_to: str | list[str] = field(
        default="none", metadata={"help": "Extra HF reporters (the run log is always on)."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log train loss every N steps."})
    # A checkpoint holds the optimizer state too (about 3x the model with AdamW): keeping every one filled
    # 600-870 MB on a toy run. The HF Trainer never deletes the newest (to resume) or the best one.
    save_total_limit: int | None = field(
        default=2,
        metadata={
            "help": "Keep this many checkpoint-N folders (each holds the optimizer state, about 3x the "
            "model); the newest and, with load_best_model_at_end, the best are always kept. null keeps all."
        },
    )
    # transformers 5 dropped it from TrainingArguments; mg-train refuses to train over a previous run without it.
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start over in an output_dir that holds a previous run: its checkpoints, model and run "
            "log are removed first (without it such a run is refused; --resume continues it instead)."
        },
    )

    metric_default = "loss"  # task modules override: the metric best-checkpoint selection uses by default
    greater_default = False

    def __post_init__(self):
        # Our checks first (types, ranges, epochs/steps: mg_train.args), so a wrong value is one line naming
        # the key, before TrainingArguments converts the values or trips over them.
        from mg_train.args import check_training_args

        check_training_args(self)
        super().__post_init__()

    @classmethod
    def defaults_for(cls, *, has_eval: bool) -> dict:
        if not has_eval:
            return {"eval_strategy": "no", "save_strategy": "epoch"}
        return {
            "eval_strategy": "epoch",
            "save_strategy": "epoch",
            "load_best_model_at_end": True,
            "metric_for_best_model": cls.metric_default,
            "greater_is_better": cls.greater_default,
        }


def count_truncated(task, tokenizer, job, data, examples: list[dict], *, batch_size: int = 64) -> int:
    """How many examples have a text longer than job.model.max_length tokens (cut by the task's collator).

    The task's own collator tokenizes with the limit lifted, so the texts are exactly what training sees; a
    batch with a long text is looked at example by example. An example the collator refuses is not counted
    (training says why)."""
    import dataclasses

    limit = job.model.max_length
    unlimited = dataclasses.replace(job, model=dataclasses.replace(job.model, max_length=10**8))
    collate = task.collate(tokenizer, unlimited, data)

    def longest(batch_examples: list[dict]) -> int | None:
        try:
            return max(_row_lengths(collate(batch_examples)), default=0)
        except ValueError:  # a row the collator refuses (e.g. one ending with the pad token)
            return None

    count = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        most = longest(chunk)
        if most is None or most > limit:
            count += sum((longest([ex]) or 0) > limit for ex in chunk)
    return count


def _row_lengths(batch: dict) -> list[int]:
    """Tokens per row of a collated batch: one encoding, or embed's query/positive/negative groups of chunks."""
    groups = [batch[k] for k in ("query", "positive", "negative") if k in batch] or [batch]
    return [
        int(n)
        for group in groups
        for encoding in group.get("chunks", [group])
        for n in encoding["attention_mask"].sum(-1).tolist()
    ]


def tokenize(tokenizer, texts, pairs=None, *, max_length: int, seq_cls: bool = False):
    """mg-heads' encoding: pad to the longest, truncate, never append eos on decoders (see the pad == eos
    rule in the mg-heads README); `seq_cls` also rejects rows whose last real token is the pad token."""
    from mg_heads.tokenize import encode_texts

    return encode_texts(
        tokenizer,
        list(texts),
        list(pairs) if pairs is not None else None,
        max_length=max_length,
        seq_cls=seq_cls,
    )
