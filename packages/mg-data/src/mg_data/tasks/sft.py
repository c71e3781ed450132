"""sft: a conversation in any of the three formats -> the internal conversation (mg_data.conversation)."""

from __future__ import annotations

from mg_data import formats
from mg_data.errors import RowError


def normalize(row, warn, fmt: str | None = None) -> dict:
    if formats.is_pairwise(row):
        raise RowError(
            "a pairwise row (chosen and rejected answers) is read by the rm and dpo tasks, not sft"
        )
    name = fmt or formats.detect(row)
    if name is None:
        raise RowError(
            "not a conversation: expected alpaca (prompt/response), sharegpt (conversations) or messages"
        )
    return formats.get(name).to_conversation(row)
