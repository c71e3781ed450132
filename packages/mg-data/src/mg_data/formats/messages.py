"""messages: [{role, content}] or {"messages": [...], "tools": [...]}, roles system/user/assistant/tool.

This is the internal format, so it holds everything the others do. Rows are always written in the
object form {"messages": [...]} (a bare list cannot carry tools or extra fields, nor become a Parquet row).
Tool-call arguments and tools given as JSON text are read into objects.

Pairwise rows are TRL's conversational preference layout: {"prompt": [messages], "chosen": [one assistant
message], "rejected": [...]} (written so); read also with the prompt as `messages`, an answer as a bare
message object, or the prompt implicit (chosen and rejected each a whole conversation sharing it).
"""

from __future__ import annotations

from typing import Any

from mg_data.conversation import (
    check_answer,
    check_messages,
    check_prompt,
    parse_json_field,
    tool_call,
    type_name,
)
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


def to_pairwise(row: Any) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a pairwise row must be an object, got {type_name(row)}")
    for key in ("chosen", "rejected"):
        if key not in row:
            raise RowError(f"missing field {key!r}")
    answers = {key: _answer_list(row[key], key) for key in ("chosen", "rejected")}
    prompt_key = "prompt" if "prompt" in row else "messages" if "messages" in row else None
    if prompt_key is None:  # implicit prompt: the messages both answers start with
        chosen, rejected = answers["chosen"], answers["rejected"]
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        prompt, answers = chosen[:n], {"chosen": chosen[n:], "rejected": rejected[n:]}
        if not prompt:
            raise RowError("no prompt: the row has none, and chosen and rejected do not start with one")
    else:
        prompt = row[prompt_key]
        if not isinstance(prompt, list):
            raise RowError(f"{prompt_key} must be a list of messages, got {type_name(prompt)}")
    prompt = [_read_calls(m, i) for i, m in enumerate(prompt)]
    pair: dict[str, Any] = {"messages": check_prompt(prompt)}
    for key, answer in answers.items():
        if len(answer) != 1:
            raise RowError(
                f"{key} holds {len(answer)} messages after the prompt; an answer is one assistant message"
            )
        pair[key] = check_answer(_read_calls(answer[0], 0), key)
    pair.update((k, v) for k, v in row.items() if k not in ("chosen", "rejected", prompt_key))
    if pair.get("tools"):
        pair["tools"] = parse_json_field(pair["tools"], "tools")
    else:
        pair.pop("tools", None)
    return pair


def _answer_list(value: Any, key: str) -> list:
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list) or not value:
        raise RowError(f"{key} must be a non-empty list of messages, got {type_name(value)}")
    return value


def from_pairwise(pair: dict) -> dict:
    row: dict = {"prompt": pair["messages"], "chosen": [pair["chosen"]], "rejected": [pair["rejected"]]}
    row.update((k, v) for k, v in pair.items() if k not in row and k != "messages")
    return row
