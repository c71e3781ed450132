"""score: a text pair and a float label -> {"text_1", "text_2", "label"}.

Read layouts: text_1/text_2 (vLLM's /score names), sentence1/sentence2 and score (STS-B,
sentence-transformers), text/text_pair, query/document; the label as `label` or `score`.
"""

from __future__ import annotations

from mg_data.conversation import type_name
from mg_data.errors import RowError
from mg_data.tasks.fields import number, pick, text

PAIRS = (("text_1", "text_2"), ("sentence1", "sentence2"), ("text", "text_pair"), ("query", "document"))


def normalize(row, warn) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a score row must be an object, got {type_name(row)}")
    for first, second in PAIRS:
        if first in row or second in row:
            break
    else:
        raise RowError(
            "missing text pair: expected text_1/text_2 (or sentence1/sentence2, text/text_pair, query/document)"
        )
    key, label = pick(row, ("label", "score"))
    if key is None:
        raise RowError("missing field 'label' (or 'score')")
    return {"text_1": text(row, (first,)), "text_2": text(row, (second,)), "label": number(label, key)}
