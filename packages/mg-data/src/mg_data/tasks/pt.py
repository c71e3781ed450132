"""pt (continued pre-training): plain text -> {"text"}."""

from __future__ import annotations

from mg_data.conversation import type_name
from mg_data.errors import RowError
from mg_data.tasks.fields import text

TEXT = ("text", "prompt", "content")


def normalize(row, warn) -> dict:
    if isinstance(row, str):
        row = {"text": row}
    if not isinstance(row, dict):
        raise RowError(f"a pt row must be an object with 'text', got {type_name(row)}")
    return {"text": text(row, TEXT)}
