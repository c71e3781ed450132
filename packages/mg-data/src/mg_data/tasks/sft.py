"""sft: a conversation in any of the three formats -> the internal conversation (mg_data.conversation)."""

from __future__ import annotations

from mg_data import formats
from mg_data.errors import RowError


def normalize(row, warn, fmt: str | None = None) -> dict:
    name = fmt or formats.detect(row)
    if name is None:
        raise RowError(
            "not a conversation: expected alpaca (prompt/response), sharegpt (conversations) or messages"
        )
    return formats.get(name).to_conversation(row)
