"""pt (continued pre-training): plain text -> {"text"}.

Read layouts: text/prompt/content, and LLaMA-Factory's alpaca (instruction, then input after a newline: the
user turn its pre-training reads as the text; its pt datasets name their text column as the prompt).
"""

from __future__ import annotations

from mg_data.conversation import type_name
from mg_data.errors import RowError
from mg_data.tasks.fields import pick, text

TEXT = ("text", "prompt", "content")
ALPACA = ("instruction", "input")


def normalize(row, warn) -> dict:
    if isinstance(row, str):
        row = {"text": row}
    if not isinstance(row, dict):
        raise RowError(f"a pt row must be an object with 'text', got {type_name(row)}")
    if pick(row, TEXT)[0] is None and "instruction" in row:
        return {"text": _alpaca_text(row)}
    return {"text": text(row, TEXT)}


def _alpaca_text(row: dict) -> str:
    parts = []
    for key in ALPACA:
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise RowError(f"{key} must be a string, got {type_name(value)}")
        if value:
            parts.append(value)
    joined = "\n".join(parts)
    if not joined.strip():
        raise RowError("instruction is empty")
    return joined
