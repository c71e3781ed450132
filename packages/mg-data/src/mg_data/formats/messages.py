"""messages: [{role, content}] or {"messages": [...], "tools": [...]}, roles system/user/assistant/tool.

This is the internal format, so it holds everything the others do. Rows are always written in the
object form {"messages": [...]} (a bare list cannot carry tools or extra fields, nor become a Parquet row).
Tool-call arguments and tools given as JSON text are read into objects.
"""

from __future__ import annotations

from typing import Any

from mg_data.conversation import check_messages, parse_json_field, tool_call, type_name
from mg_data.errors import RowError


def to_conversation(row: Any, *, need_response: bool = True) -> dict:
    if isinstance(row, list):
        row = {"messages": row}
    elif not isinstance(row, dict):
        raise RowError(f"a messages row must be a list or an object with 'messages', got {type_name(row)}")
    messages = row.get("messages")
    if isinstance(messages, list):
        messages = [_read_calls(m, i) for i, m in enumerate(messages)]
    conv = {**row, "messages": check_messages(messages, need_response=need_response)}
    if conv.get("tools"):
        conv["tools"] = parse_json_field(conv["tools"], "tools")
    else:
        conv.pop("tools", None)
    return conv


def _read_calls(m: Any, i: int) -> Any:
    calls = m.get("tool_calls") if isinstance(m, dict) else None
    if not calls or not isinstance(calls, list):
        return m
    fixed = []
    for j, c in enumerate(calls):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise RowError(f"messages[{i}].tool_calls[{j}] needs function.name")
        fixed.append({**c, **tool_call(fn["name"], fn.get("arguments", {}))})
    return {**m, "tool_calls": fixed}


def from_conversation(conv: dict) -> dict:
    return conv
