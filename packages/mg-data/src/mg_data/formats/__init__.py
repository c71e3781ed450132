"""The three conversation formats. Each module converts its rows to the internal conversation
(see mg_data.conversation) and back: `to_conversation(row)` and `from_conversation(conv)`."""

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


def get(name: str):
    try:
        return FORMATS[name]
    except KeyError:
        raise DataError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None
