"""An entry's rows in the layout mg-data's formats read: the entry's `columns` and `tags` translated to
LLaMA-Factory's default names, as its converters (data/converter.py) read them.

alpaca -> {instruction, history, output, system, tools, chosen, rejected, kto_tag}: `instruction` is the
prompt and query columns joined with a newline (empty parts left out), as LLaMA-Factory builds the user turn.
sharegpt -> {conversations: [{from, value}], system, tools, chosen, rejected, kto_tag}, roles renamed from the
entry's tags to human/gpt/observation/function_call/system.

As in LLaMA-Factory, only the columns the entry names are read (its converter keeps nothing else), a column
missing from a row reads as empty, and chosen/rejected are read only when `ranking` is true (the response
column is not, then). Where LLaMA-Factory skips a malformed row with a log line (a role none of the tags
name, a row of the wrong length) or fails the whole run (a column of the wrong type), mg-data reports the
row as `file:line: reason`, naming the column as the entry names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mg_data.conversation import type_name
from mg_data.errors import RowError
from mg_data.llamafactory.info import Entry

Warn = Callable[[str], None]
Mapper = Callable[[Any, Warn], Any]

# sharegpt's roles under their default names, by the tag that renames them (tag_mapping's order).
ROLES = (
    ("user_tag", "human"),
    ("assistant_tag", "gpt"),
    ("observation_tag", "observation"),
    ("function_tag", "function_call"),
    ("system_tag", "system"),
)
# Columns users name by their default names but an entry may not declare: a row holding one is worth a
# warning, since neither LLaMA-Factory nor mg-data reads it then.
WATCHED = ("system", "history", "tools", "chosen", "rejected", "kto_tag")
# pandas' (so `datasets`') spellings of a bool in a CSV cell; mg-data's CSV reader gives strings.
CSV_BOOLS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}


def mapper(entry: Entry, kind: str) -> Mapper:
    """The function that turns a row of one of the entry's files (of file type `kind`) into its layout."""
    read = _alpaca if entry.formatting == "alpaca" else _sharegpt

    def map_row(row: Any, warn: Warn) -> dict:
        if not isinstance(row, dict):
            raise RowError(f"a row must be an object of columns, got {type_name(row)}")
        _warn_unread(entry, row, warn)
        out = read(entry, row)
        kto_tag = _value(entry, row, "kto_tag")
        if kto_tag is not None:
            out["kto_tag"] = CSV_BOOLS.get(kto_tag, kto_tag) if kind == "csv" else kto_tag
        return out

    return map_row


def _alpaca(entry: Entry, row: dict) -> dict:
    out: dict[str, Any] = {}
    parts = [_text(entry, row, "prompt"), _text(entry, row, "query")]
    prompt = "\n".join(part for part in parts if part)
    if prompt:
        out["instruction"] = prompt
    else:
        named = [f"{entry.columns[r]!r} (columns.{r})" for r in ("prompt", "query") if entry.columns[r]]
        if not named:
            raise RowError("no prompt: the entry names no prompt or query column")
        raise RowError(
            f"no prompt: {' and '.join(named)} {'is' if len(named) == 1 else 'are'} empty or missing"
        )
    history = _value(entry, row, "history")
    if history is not None:
        if not isinstance(history, list):
            raise RowError(
                f"column {entry.columns['history']!r} (columns.history) must be a list of [query, answer] "
                f"pairs, got {type_name(history)}"
            )
        out["history"] = history
    if entry.ranking:
        out.update(_answers(entry, row, lambda value, column: value))
    else:
        response = _value(entry, row, "response")
        if response is not None:
            out["output"] = response
    out.update(_system_and_tools(entry, row))
    return out


def _sharegpt(entry: Entry, row: dict) -> dict:
    column = entry.columns["messages"]
    assert column is not None  # checked when the entry was read
    messages = row.get(column)
    if messages is None:
        raise RowError(f"missing column {column!r} (columns.messages)")
    if not isinstance(messages, list):
        raise RowError(
            f"column {column!r} (columns.messages) must be a list of messages, got {type_name(messages)}"
        )
    roles = {entry.tags[tag]: name for tag, name in ROLES if entry.tags[tag] is not None}
    turns = [_turn(entry, roles, m, f"{column}[{i}]") for i, m in enumerate(messages)]
    out: dict[str, Any] = {"conversations": turns}
    # A first message with the system tag is the system prompt, and the system column is not read then.
    leading_system = bool(turns) and turns[0]["from"] == "system"
    out.update(_system_and_tools(entry, row, system=not leading_system))
    if entry.ranking:
        out.update(_answers(entry, row, lambda value, column: _answer(entry, roles, value, column)))
    return out


def _turn(entry: Entry, roles: dict, message: Any, where: str) -> dict:
    role_tag, content_tag = entry.tags["role_tag"], entry.tags["content_tag"]
    if not isinstance(message, dict):
        raise RowError(
            f"{where} must be an object with {role_tag!r} and {content_tag!r}, got {type_name(message)}"
        )
    role = message.get(role_tag)
    if not isinstance(role, str) or role not in roles:
        if role_tag not in message:
            raise RowError(f"{where} has no {role_tag!r} (tags.role_tag)")
        named = ", ".join(
            f"{tag[:-4]} {entry.tags[tag]!r}" for tag, _ in ROLES if entry.tags[tag] is not None
        )
        hint = "; a system message needs tags.system_tag" if role == "system" else ""
        raise RowError(f"{where}.{role_tag} is {role!r}, none of the entry's tags ({named}){hint}")
    if content_tag not in message:
        raise RowError(f"{where} has no {content_tag!r} (tags.content_tag)")
    content = message[content_tag]
    if not isinstance(content, str):
        raise RowError(f"{where}.{content_tag} must be a string, got {type_name(content)}")
    return {"from": roles[role], "value": content}


def _answer(entry: Entry, roles: dict, value: Any, column: str) -> Any:
    """A chosen/rejected message of a sharegpt ranking row, its role renamed; any other value is left for the
    pairwise reader to judge."""
    return _turn(entry, roles, value, column) if isinstance(value, dict) else value


def _answers(entry: Entry, row: dict, read: Callable[[Any, str], Any]) -> dict:
    out = {}
    for role in ("chosen", "rejected"):
        column = entry.columns[role]
        if column is not None and row.get(column) is not None:
            out[role] = read(row[column], column)
    return out


def _system_and_tools(entry: Entry, row: dict, *, system: bool = True) -> dict:
    out = {}
    for role in ("system", "tools") if system else ("tools",):
        value = _value(entry, row, role)
        if value not in (None, ""):  # LLaMA-Factory reads an empty one as none
            out[role] = value
    return out


def _value(entry: Entry, row: dict, role: str) -> Any:
    column = entry.columns[role]
    return None if column is None else row.get(column)


def _text(entry: Entry, row: dict, role: str) -> str | None:
    value = _value(entry, row, role)
    if value is None or isinstance(value, str):
        return value
    raise RowError(f"column {entry.columns[role]!r} (columns.{role}) must be text, got {type_name(value)}")


def _warn_unread(entry: Entry, row: dict, warn: Warn) -> None:
    named = {column for column in entry.columns.values() if column}
    for name in WATCHED:
        if name in row and name not in named and row[name] not in (None, "", []):
            if name in ("chosen", "rejected") and not entry.ranking:
                message = f"column {name!r} is not read: the entry's ranking is not true"
            else:
                message = f"column {name!r} is not read: the entry's columns do not name it"
            warn(f"{message} (LLaMA-Factory ignores it too); dataset {entry.name!r} in {entry.info_path}")
