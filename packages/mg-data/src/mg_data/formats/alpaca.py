"""alpaca: {prompt, response, system, history: [[q, a], ...], tools} and the classic
{instruction, input, output}. Earlier turns live in `history`; the last turn is prompt/response.

Cannot hold: tool calls and tool results, and the classic instruction/input split (it is joined into
`prompt` with a newline, as LLaMA-Factory does).

Pairwise rows (LLaMA-Factory's alpaca ranking layout, and TRL's standard one): the prompt fields plus
`chosen` and `rejected` strings.
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
    type_name,
)
from mg_data.errors import RowError

KEYS = frozenset({"prompt", "response", "system", "history", "tools", "instruction", "input", "output"})
TEXT_KEYS = frozenset({"prompt", "response", "instruction", "output"})


def to_conversation(row: Any, *, need_response: bool = True) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"an alpaca row must be an object, got {type_name(row)}")
    if "prompt" in row:
        prompt = _text(row, "prompt")
    elif "instruction" in row:
        parts = [_text(row, "instruction"), _text(row, "input", missing_ok=True)]
        prompt = "\n".join(p for p in parts if p)
    else:
        raise RowError("missing field 'prompt' (or 'instruction')")
    key = "response" if "response" in row else "output"
    if key not in row and need_response:
        raise RowError("missing field 'response' (or 'output')")
    messages = []
    system = _text(row, "system", missing_ok=True)
    if system:
        messages.append({"role": "system", "content": system})
    history = row.get("history") or []
    if not isinstance(history, list):
        raise RowError(f"history must be a list of [query, answer] pairs, got {type_name(history)}")
    for i, pair in enumerate(history):
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and type(pair[0]) is str
            and type(pair[1]) is str
        ):
            raise RowError(f"history[{i}] must be a [query, answer] pair of strings")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    messages.append({"role": "user", "content": prompt})
    if key in row:
        messages.append({"role": "assistant", "content": _text(row, key)})
    conv = {"messages": check_messages(messages, need_response=need_response)}
    if row.get("tools"):
        conv["tools"] = parse_json_field(row["tools"], "tools")
    if extra := row.keys() - KEYS:
        conv.update((k, row[k]) for k in row if k in extra)  # keep the row's key order
    return conv


def to_pairwise(row: Any) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"an alpaca row must be an object, got {type_name(row)}")
    # A response next to the answers is not part of the prompt: it rides along like any other field.
    prompt = {k: v for k, v in row.items() if k not in ("chosen", "rejected", "response", "output")}
    conv = to_conversation(prompt, need_response=False)
    pair: dict[str, Any] = {"messages": check_prompt(conv.pop("messages"))}
    for key in ("chosen", "rejected"):
        if key not in row:
            raise RowError(f"missing field {key!r}")
        value = row[key]
        if not isinstance(value, str):
            raise RowError(f"{key} must be a string in an alpaca row, got {type_name(value)}")
        pair[key] = check_answer({"role": "assistant", "content": value}, key)
    pair.update(conv)
    pair.update((k, row[k]) for k in ("response", "output") if k in row)
    return pair


def from_pairwise(pair: dict) -> dict:
    answers = {key: pair[key] for key in ("chosen", "rejected")}
    if any(a.get("tool_calls") for a in answers.values()) or pair["messages"][-1]["role"] == "tool":
        raise RowError("alpaca cannot hold tool calls or tool results; convert to sharegpt or messages")
    carried = {k: v for k, v in pair.items() if k in ("response", "output")}
    conv = {k: v for k, v in pair.items() if k not in (*answers, *carried)}
    placeholder = {"role": "assistant", "content": ""}  # closes the last turn; the answers take its place
    row = from_conversation({**conv, "messages": [*pair["messages"], placeholder]})
    del row["response"]
    extra = {k: row.pop(k) for k in list(row) if k not in KEYS}
    row.update((key, answer["content"]) for key, answer in answers.items())
    row.update(carried)
    row.update(extra)
    return row


def from_conversation(conv: dict) -> dict:
    system, turns = split_system(conv["messages"])
    for m in turns:
        if m["role"] == "tool" or m.get("tool_calls"):
            raise RowError("alpaca cannot hold tool calls or tool results; convert to sharegpt or messages")
    pairs = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 1, 2)]
    row: dict = {}
    if system is not None:
        row["system"] = system
    if len(pairs) > 1:
        row["history"] = pairs[:-1]
    row["prompt"], row["response"] = pairs[-1]
    if conv.get("tools"):
        row["tools"] = json.dumps(conv["tools"], ensure_ascii=False)
    row.update((k, v) for k, v in conv.items() if k not in ("messages", "tools"))
    return row


def _text(row: dict, key: str, *, missing_ok: bool = False) -> str:
    value = row.get(key)
    if value is None and missing_ok:
        return ""
    if not isinstance(value, str):
        raise RowError(f"{key} must be a string, got {type_name(value)}")
    return value
