"""classify: text (+ optional text_pair) and a label -> {"text", "text_pair"?, "label"}.

The label is a class name or id (single-label), a list of them (multi-label) or a float (regression);
the seed's layout keeps it in `response`.
"""

from __future__ import annotations

from mg_data.conversation import type_name
from mg_data.errors import RowError
from mg_data.tasks.fields import finite, pick, text

TEXT = ("text", "prompt", "sentence", "input", "query")
PAIR = ("text_pair", "sentence2")
LABEL = ("label", "labels", "response")


def normalize(row, warn) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a classify row must be an object, got {type_name(row)}")
    example = {"text": text(row, TEXT)}
    pair = text(row, PAIR, required=False)
    if pair is not None:
        example["text_pair"] = pair
    key, label = pick(row, LABEL)
    if key is None:
        raise RowError("missing field 'label' (or 'labels', 'response')")
    example["label"] = check_label(label, key)
    return example


def check_label(label, key: str):
    if isinstance(label, bool) or label is None:
        raise RowError(
            f"{key} must be a class name, a class id, a list of them or a number, got {type_name(label)}"
        )
    if isinstance(label, str):
        if not label.strip():
            raise RowError(f"{key} is empty")
        return label
    if isinstance(label, float):
        return finite(label, key)
    if isinstance(label, int):
        return label
    if isinstance(label, list):
        if not label:
            raise RowError(f"{key} is an empty list (a multi-label row needs at least one label)")
        for i, item in enumerate(label):
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise RowError(f"{key}[{i}] must be a class name or id, got {type_name(item)}")
        return label
    raise RowError(
        f"{key} must be a class name, a class id, a list of them or a number, got {type_name(label)}"
    )
