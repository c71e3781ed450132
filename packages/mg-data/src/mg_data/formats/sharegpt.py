"""sharegpt: {conversations: [{from, value}], system, tools}.

Roles: human -> user, gpt -> assistant, function_call -> assistant with tool_calls (value is JSON
{"name", "arguments"} or a list of them), observation -> tool, system (first turn only) -> system.
`tools` is JSON text here and a list in messages.

Cannot hold: an assistant message with both text and tool calls, several tool results in a row, and
per-message extras such as `name` or `tool_call_id`. Tool JSON is re-serialized (same value, maybe other
whitespace).

Pairwise rows (LLaMA-Factory's sharegpt ranking layout, dpo_en_demo's): `conversations` holds the prompt,
ending with the user's turn, and `chosen` / `rejected` each hold one turn, {"from": "gpt" or
"function_call", "value"}.
"""

from __future__ import annotations

import json
from typing import Any

from mg_data.conversation import (
    check_answer,
    check_messages,
    check_prompt,
    parse_json_field,
    split_system,
    tool_call,
    type_name,
)
from mg_data.errors import RowError

KEYS = frozenset({"conversations", "system", "tools"})
TO_ROLE = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "observation": "tool",
    "tool": "tool",
    "function_call": "assistant",
}


def to_conversation(row: Any, *, need_response: bool = True) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a sharegpt row must be an object, got {type_name(row)}")
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise RowError(f"conversations must be a list of {{from, value}} turns, got {type_name(turns)}")
    messages: list[dict[str, Any]] = []
    system = row.get("system")
    if system is not None and not isinstance(system, str):
        raise RowError(f"system must be a string, got {type_name(system)}")
    if system:
        messages.append({"role": "system", "content": system})
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowError(f"conversations[{i}] must be an object, got {type_name(turn)}")
        # Some exports use role/content inside "conversations"; read both spellings.
        who = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        if who not in TO_ROLE:
            raise RowError(
                f"conversations[{i}].from is {who!r}; expected human, gpt, system, function_call or observation"
            )
        if not isinstance(value, str):
            raise RowError(f"conversations[{i}].value must be a string, got {type_name(value)}")
        if who == "function_call":
            messages.append({"role": "assistant", "content": "", "tool_calls": _calls(value, i)})
        elif TO_ROLE[who] == "system" and messages:
            raise RowError(f"conversations[{i}]: a system turn may only come first")
        else:
            messages.append({"role": TO_ROLE[who], "content": value})
    conv = {"messages": check_messages(messages, need_response=need_response)}
    if row.get("tools"):
        conv["tools"] = parse_json_field(row["tools"], "tools")
    if extra := row.keys() - KEYS:
        conv.update((k, row[k]) for k in row if k in extra)  # keep the row's key order
    return conv


def _calls(value: str, where: int | str) -> list[dict]:
    where = f"conversations[{where}]" if isinstance(where, int) else where
    parsed = parse_json_field(value, f"{where} (function_call)")
    items = parsed if isinstance(parsed, list) else [parsed]
    calls = []
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("name"), str)):
            raise RowError(f'{where}: a function_call value must be JSON {{"name", "arguments"}}')
        calls.append(tool_call(item["name"], item.get("arguments", {})))
    return calls


def to_pairwise(row: Any) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a sharegpt row must be an object, got {type_name(row)}")
    conv = to_conversation(
        {k: v for k, v in row.items() if k not in ("chosen", "rejected")}, need_response=False
    )
    pair: dict[str, Any] = {"messages": check_prompt(conv.pop("messages"))}
    for key in ("chosen", "rejected"):
        if key not in row:
            raise RowError(f"missing field {key!r}")
        pair[key] = check_answer(_answer(row[key], key), key)
    pair.update(conv)
    return pair


def _answer(value: Any, key: str) -> dict:
    """A chosen/rejected turn ({from, value}, or role/content) as an assistant message; a bare string is
    read as the assistant's text."""
    if isinstance(value, str):
        return {"role": "assistant", "content": value}
    if not isinstance(value, dict):
        raise RowError(f"{key} must be a {{from, value}} turn, got {type_name(value)}")
    who = value.get("from", value.get("role"))
    text = value.get("value", value.get("content"))
    if who not in ("gpt", "assistant", "function_call"):
        raise RowError(f"{key}.from is {who!r}; an answer is the assistant's turn (gpt or function_call)")
    if not isinstance(text, str):
        raise RowError(f"{key}.value must be a string, got {type_name(text)}")
    if who == "function_call":
        return {"role": "assistant", "content": "", "tool_calls": _calls(text, key)}
    return {"role": "assistant", "content": text}


def from_pairwise(pair: dict) -> dict:
    conv = {k: v for k, v in pair.items() if k not in ("chosen", "rejected")}
    row = from_conversation(conv)
    extra = {k: row.pop(k) for k in list(row) if k not in KEYS}
    row.update((key, _turn(pair[key])) for key in ("chosen", "rejected"))
    row.update(extra)
    return row


def from_conversation(conv: dict) -> dict:
    system, messages = split_system(conv["messages"])
    turns = []
    for i, m in enumerate(messages):
        if m["role"] == "tool" and i > 0 and messages[i - 1]["role"] == "tool":
            raise RowError("sharegpt cannot hold several tool results in a row")
        turns.append(_turn(m))
    row: dict = {"conversations": turns}
    if system is not None:
        row["system"] = system
    if conv.get("tools"):
        row["tools"] = json.dumps(conv["tools"], ensure_ascii=False)
    row.update((k, v) for k, v in conv.items() if k not in ("messages", "tools"))
    return row


def _turn(m: dict) -> dict:
    """One message as a sharegpt turn (a tool-calling assistant message as a function_call turn)."""
    calls = m.get("tool_calls")
    if calls:
        if m.get("content"):
            raise RowError("sharegpt cannot hold an assistant message with both text and tool calls")
        items = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in calls]
        value = json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False)
        return {"from": "function_call", "value": value}
    if m["role"] == "tool":
        return {"from": "observation", "value": m["content"]}
    return {"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]}
