"""The three conversation formats. Each module converts its rows to the internal conversation
(see mg_data.conversation) and back: `to_conversation(row)` and `from_conversation(conv)`.

A pairwise row (a prompt with a chosen and a rejected answer, for rm/dpo) converts the same way through
`to_pairwise(row)` / `from_pairwise(pair)`; the internal pair is
{"messages": the prompt, ending with the user's turn, "chosen": message, "rejected": message, "tools"?, ...}.
"""

from __future__ import annotations

from typing import Any

from mg_data.errors import DataError
from mg_data.formats import alpaca, messages, sharegpt

FORMATS = {"alpaca": alpaca, "sharegpt": sharegpt, "messages": messages}


def detect(row: Any) -> str | None:
    """Which format a row is in, from its keys; None when no format fits."""
    if isinstance(row, list) or (isinstance(row, dict) and "messages" in row):
        return "messages"
    if isinstance(row, dict):
        if "conversations" in row:
            return "sharegpt"
        if row.keys() & alpaca.TEXT_KEYS:
            return "alpaca"
    return None


ANSWERS = ("chosen", "rejected")


def is_pairwise(row: Any) -> bool:
    """A row with a chosen or a rejected answer (the other one missing is that row's error)."""
    return isinstance(row, dict) and any(key in row for key in ANSWERS)


def detect_pairwise(row: dict) -> str:
    """The format of a pairwise row: sharegpt (conversations), messages (TRL's conversational layout: message
    lists) or alpaca (instruction/prompt text; TRL's standard layout reads the same)."""
    if "conversations" in row:
        return "sharegpt"
    if "messages" in row or isinstance(row.get("prompt"), list) or isinstance(row.get("chosen"), list):
        return "messages"
    return "alpaca"


def get(name: str):
    try:
        return FORMATS[name]
    except KeyError:
        raise DataError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None
