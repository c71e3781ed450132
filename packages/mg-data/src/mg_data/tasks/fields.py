"""Reading task fields under the names other tools use for them."""

from __future__ import annotations

import math
from typing import Any

from mg_data.conversation import type_name
from mg_data.errors import RowError


def pick(row: dict, names: tuple[str, ...]) -> tuple[str | None, Any]:
    """The first of `names` present in `row` (key, value), or (None, None)."""
    for name in names:
        if name in row:
            return name, row[name]
    return None, None


def text(row: dict, names: tuple[str, ...], *, required: bool = True) -> str | None:
    key, value = pick(row, names)
    if key is None:
        if required:
            raise RowError(f"missing field {_alternatives(names)}")
        return None
    if not isinstance(value, str):
        raise RowError(f"{key} must be a string, got {type_name(value)}")
    if not value.strip():
        raise RowError(f"{key} is empty")
    return value


def texts(value: Any, key: str) -> list[str]:
    """A string or a list of strings, as a list of non-empty strings."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise RowError(f"{key} must be a string or a list of strings, got {type_name(value)}")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise RowError(f"{key}[{i}] must be a string, got {type_name(t)}")
        if not t.strip():
            raise RowError(f"{key}[{i}] is empty")
    return items


def number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RowError(f"{key} must be a number, got {type_name(value)}")
    return finite(float(value), key)


def finite(value: float, key: str) -> float:
    """NaN or an infinity in a label trains a model whose weights are all NaN: a row error, never data."""
    if not math.isfinite(value):
        raise RowError(f"{key} must be a finite number, got {value}")
    return value


def messages_text(value: Any, key: str) -> str:
    """ms-swift keeps embedding texts as one-message conversations; their text is the contents joined."""
    if not isinstance(value, list) or not value:
        raise RowError(f"{key} must be a non-empty list of messages")
    parts = []
    for i, m in enumerate(value):
        if not (isinstance(m, dict) and isinstance(m.get("content"), str)):
            raise RowError(f"{key}[{i}] must be a message with string content")
        if m.get("role") != "system":
            parts.append(m["content"])
    result = "\n".join(parts)
    if not result.strip():
        raise RowError(f"{key} has no text")
    return result


def _alternatives(names: tuple[str, ...]) -> str:
    return repr(names[0]) if len(names) == 1 else f"{names[0]!r} (or {', '.join(repr(n) for n in names[1:])})"
