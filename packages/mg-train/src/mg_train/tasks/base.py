"""What every pooling task shares: the Config base, tokenization, and the in-training eval backend."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments


@dataclass
class PoolingConfig(TrainingArguments):
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
    save_total_limit: int | None = field(default=3, metadata={"help": "Keep this many checkpoints."})

    metric_default = "loss"  # task modules override: the metric best-checkpoint selection uses by default
    greater_default = False

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


def device_of(model) -> torch.device:
    return next(model.parameters()).device


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


def render(tokenizer, item) -> str:
    """A message list through the model's chat template (plain text if it has none); text as is."""
    if isinstance(item, str):
        return item
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(item, tokenize=False)
    return "\n".join(m["content"] for m in item)


class ModelBackend:
    """mg-eval's backend interface over the model being trained, so eval during training and
    `mg-eval run` compute metrics with the same code."""

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_length: int,
        batch_size: int = 32,
        id2label=None,
        problem_type=None,
        seq_cls: bool = False,
    ):
        self.model, self.tokenizer, self.seq_cls = model, tokenizer, seq_cls
        self.max_length, self.batch_size = max_length, batch_size
        self.id2label, self.problem_type = id2label, problem_type

    @torch.no_grad()
    def _forward(self, texts, pairs=None) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        out = []
        try:
            for i in range(0, len(texts), self.batch_size):
                enc = tokenize(
                    self.tokenizer,
                    texts[i : i + self.batch_size],
                    None if pairs is None else pairs[i : i + self.batch_size],
                    max_length=self.max_length,
                    seq_cls=self.seq_cls,
                )
                result = self.model(**enc.to(device_of(self.model)))
                out.append((result.logits if hasattr(result, "logits") else result).float().cpu())
        finally:
            self.model.train(was_training)
        return torch.cat(out)

    def classify(self, inputs):
        texts = [x[0] if isinstance(x, tuple) else render(self.tokenizer, x) for x in inputs]
        pairs = [x[1] for x in inputs] if inputs and isinstance(inputs[0], tuple) else None
        logits = self._forward(texts, pairs)
        if self.problem_type == "regression":
            probs = logits
        elif self.problem_type == "multi_label_classification":
            probs = torch.sigmoid(logits)
        else:
            probs = torch.softmax(logits, -1)
        names = self.id2label or {}
        return [
            {"label": names.get(int(p.argmax()), str(int(p.argmax()))), "probs": p.tolist()} for p in probs
        ]

    def reward(self, inputs):
        return self._forward([render(self.tokenizer, x) for x in inputs])[:, 0].tolist()

    def rerank(self, query, documents):
        return self._forward([query] * len(documents), documents)[:, 0].tolist()

    def score(self, text_1, text_2):
        return self._forward(list(text_1), list(text_2))[:, 0].tolist()

    def embed(self, texts):
        return self._forward(list(texts)).tolist()  # EmbeddingModel returns pooled (normalized) vectors
