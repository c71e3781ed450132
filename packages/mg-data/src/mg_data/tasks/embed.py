"""embed: a query with positives and negatives -> {"query", "positives": [..], "negatives": [..]}.

Read layouts: ours and the seed's (query/positive/negative/negative_1..N), FlagEmbedding (query/pos/neg
lists), sentence-transformers (anchor/positive/negative[_N]), ms-swift (messages/positive_messages/
negative_messages, one conversation per text). `negatives` may be empty: in-batch negatives still apply.
"""

from __future__ import annotations

import re

from mg_data.conversation import type_name
from mg_data.errors import RowError
from mg_data.tasks.fields import messages_text, pick, text, texts

QUERY = ("query", "anchor")
POSITIVE = ("positive", "positives", "pos")
NEGATIVE = ("negative", "negatives", "neg")
_NUMBERED = re.compile(r"^negative_(\d+)$")


def normalize(row, warn) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"an embedding row must be an object, got {type_name(row)}")
    if "positive_messages" in row:
        return _ms_swift(row)
    query = text(row, QUERY)
    key, positive = pick(row, POSITIVE)
    if key is None:
        raise RowError("missing field 'positive' (or 'positives', 'pos')")
    positives = texts(positive, key)
    if not positives:
        raise RowError(f"{key} is empty: each row needs a positive")
    return {"query": query, "positives": positives, "negatives": negatives(row)}


def negatives(row: dict) -> list[str]:
    """`negative`/`negatives`/`neg` (a string or list) plus `negative_1..N`, in that order."""
    result = []
    key, value = pick(row, NEGATIVE)
    if key is not None and value is not None:
        result += texts(value, key)
    numbered = sorted((int(m.group(1)), k) for k in row if (m := _NUMBERED.match(k)))
    for _, k in numbered:
        result += texts(row[k], k)
    return result


def _ms_swift(row: dict) -> dict:
    query = messages_text(row.get("messages"), "messages")
    groups = {}
    for key in ("positive_messages", "negative_messages"):
        value = row.get(key) or []
        if not isinstance(value, list):
            raise RowError(f"{key} must be a list of conversations, got {type_name(value)}")
        groups[key] = [messages_text(conv, f"{key}[{i}]") for i, conv in enumerate(value)]
    if not groups["positive_messages"]:
        raise RowError("positive_messages is empty: each row needs a positive")
    return {
        "query": query,
        "positives": groups["positive_messages"],
        "negatives": groups["negative_messages"],
    }
