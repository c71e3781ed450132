"""The internal conversation: OpenAI/HF-style messages, and the rules a trainable one follows.

A conversation is a dict: {"messages": [{"role", "content", ...}], "tools": [...]?, **extra}.
Roles are system/user/assistant/tool. An assistant message may carry `tool_calls`
([{"type": "function", "function": {"name", "arguments": dict}}]) as transformers chat templates expect;
a tool message answers the calls of the assistant message before it.
"""

from __future__ import annotations

import json
from typing import Any

from mg_data.errors import RowError

ROLES = ("system", "user", "assistant", "tool")


def check_messages(messages: Any, *, need_response: bool = True) -> list[dict]:
    """Return `messages` if it is a well-formed conversation, else raise RowError saying what is wrong.

    Rules: an optional system message first; then user and assistant turns alternate, starting with user;
    tool messages follow an assistant message that made tool calls (several results may follow one call
    message) and are followed by an assistant message; with `need_response`, the conversation ends with a
    non-empty assistant reply.
    """
    if not isinstance(messages, list):
        raise RowError(f"messages must be a list, got {type_name(messages)}")
    if not messages:
        raise RowError("messages is empty")
    prev = None
    for i, m in enumerate(messages):
        if type(m) is not dict:
            raise RowError(f"messages[{i}] must be an object with role and content, got {type_name(m)}")
        role = m.get("role")
        content = m.get("content")
        calls = m.get("tool_calls")
        # The common case first (plain text, right order), so millions of rows pay for few checks.
        if (
            type(content) is str
            and calls is None
            and role in _NEXT.get(prev, ())
            and (role == "assistant" or content.strip())
        ):
            prev = role
            continue
        _explain(messages, i, prev)
        prev = role
    if need_response:
        last = messages[-1]
        if last["role"] != "assistant":
            raise RowError(f"the conversation must end with an assistant reply, but ends with {last['role']}")
        if last.get("tool_calls"):
            raise RowError("the conversation ends with a tool call and no assistant reply")
        if not last["content"].strip():
            raise RowError("empty response: the last assistant message has no content")
    return messages


# Which role may follow which (None = the start). tool follows only a tool-calling assistant: see _explain.
_NEXT = {
    None: ("system", "user"),
    "system": ("user",),
    "user": ("assistant",),
    "assistant": ("user",),
    "tool": ("assistant",),
}


def _explain(messages: list, i: int, prev: str | None) -> None:
    """Message i is not the plain common case: accept it if valid (tool calls), else say what is wrong."""
    m, where = messages[i], f"messages[{i}]"
    role = m.get("role")
    if role not in ROLES:
        raise RowError(f"{where}.role is {role!r}; expected one of {', '.join(ROLES)}")
    content = m.get("content")
    calls = m.get("tool_calls")
    if calls is not None:
        if role != "assistant":
            raise RowError(f"{where}: only assistant messages carry tool_calls")
        check_tool_calls(calls, where)
    if content is None and not calls:
        raise RowError(f"{where}.content is missing")
    if content is not None and not isinstance(content, str):
        raise RowError(f"{where}.content must be a string, got {type_name(content)}")
    if role in ("user", "system") and (content is None or not content.strip()):
        raise RowError(f"{where}: empty {role} message")
    if role == "system":
        if i != 0:
            raise RowError(f"{where}: a system message may only come first")
    elif role == "user":
        if prev not in (None, "system", "assistant"):
            raise RowError(f"{where}: roles must alternate, but user follows {prev}")
    elif role == "assistant":
        if prev not in ("user", "tool"):
            raise RowError(f"{where}: roles must alternate, but assistant follows {prev or 'nothing'}")
    elif role == "tool":
        if prev == "assistant" and not messages[i - 1].get("tool_calls"):
            raise RowError(f"{where}: a tool message must answer an assistant message with tool_calls")
        if prev not in ("assistant", "tool"):
            raise RowError(
                f"{where}: a tool message must follow an assistant tool call, not {prev or 'nothing'}"
            )


def check_prompt(messages: Any) -> list[dict]:
    """The prompt of a pairwise row: a well-formed conversation that ends with the user's turn (or a tool
    result), since the row's chosen and rejected answers are the replies to it."""
    check_messages(messages, need_response=False)
    last = messages[-1]["role"]
    if last not in ("user", "tool"):
        raise RowError(
            f"the prompt ends with {'an' if last == 'assistant' else 'a'} {last} message, but in a pairwise "
            "row it ends with the user's turn: chosen and rejected are the replies to it"
        )
    return messages


def check_answer(answer: Any, key: str) -> dict:
    """A chosen or rejected answer of a pairwise row: one assistant message, text or tool calls."""
    if type(answer) is not dict or answer.get("role") != "assistant":
        role = answer.get("role") if isinstance(answer, dict) else None
        raise RowError(
            f"{key} must be an assistant message, got {type_name(answer) if role is None else role}"
        )
    calls = answer.get("tool_calls")
    if calls is not None:
        check_tool_calls(calls, key)
    content = answer.get("content")
    if content is not None and not isinstance(content, str):
        raise RowError(f"{key}.content must be a string, got {type_name(content)}")
    if not calls and not (content or "").strip():
        raise RowError(f"{key} is empty")
    return answer


def check_tool_calls(calls: Any, where: str) -> None:
    if not isinstance(calls, list) or not calls:
        raise RowError(f"{where}.tool_calls must be a non-empty list")
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise RowError(f"{where}.tool_calls[{j}] needs function.name")
        if not isinstance(fn.get("arguments"), dict):
            raise RowError(f"{where}.tool_calls[{j}].function.arguments must be an object")


def parse_json_field(value: Any, field: str) -> Any:
    """Fields that some formats keep as JSON text (sharegpt `tools`, function_call values)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise RowError(f"{field} is not valid JSON: {e.msg} at column {e.colno}") from None


def tool_call(name: str, arguments: Any) -> dict:
    """One entry of an assistant message's tool_calls, arguments as an object (what chat templates render)."""
    arguments = parse_json_field(arguments, "function call arguments")
    if not isinstance(arguments, dict):
        raise RowError(f"function call arguments must be an object, got {type_name(arguments)}")
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


def split_system(messages: list[dict]) -> tuple[str | None, list[dict]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
