"""Before step 1: the first samples as the model sees them (decoded tokens, special tokens included),
with their labels, printed and kept in the run log."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mg_data.preview import Segment


def preview_samples(examples: list[dict], collate: Callable, tokenizer, task: str, n: int) -> list[dict]:
    """One entry per sample: {"segments": [...], "label": ...}. Pooling tasks train no span of the text
    (the head reads the pooled sequence), so segments are context; the label is what is learned."""
    samples = []
    for ex in examples[:n]:
        batch = collate([ex])
        texts = _texts(batch, tokenizer)
        samples.append(
            {"segments": [{"text": t, "trained": False} for t in texts], "label": _label(ex, task)}
        )
    return samples


def _texts(batch: dict, tokenizer) -> list[str]:
    groups = [batch[k] for k in ("query", "positive", "negative") if k in batch] or [batch]
    out = []
    for group in groups:
        # embed encodes each column in chunks of similar length (mg_heads.length_groups)
        for encoding in group.get("chunks", [group]):
            ids: torch.Tensor = encoding["input_ids"]
            for row, m in zip(ids, encoding["attention_mask"], strict=True):
                out.append(tokenizer.decode(row[m.bool()], skip_special_tokens=False))
    return out


def _label(ex: dict, task: str):
    if task in ("classify", "score"):
        return ex["label"]
    if task == "rm":
        return "chosen (first) > rejected (second)"
    return f"positive first, then {len(ex['negatives'])} negative(s)"


def format_preview(samples: list[dict]) -> str:
    lines = []
    for i, s in enumerate(samples):
        lines.append(f"── sample {i} " + "─" * 50)
        for seg in s["segments"]:
            lines.append(Segment(seg["text"], seg["trained"]).text)
        lines.append(f"   label: {s['label']}")
    return "\n".join(lines)
