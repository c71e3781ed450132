"""kto: one answer marked desirable or not -> {"prompt", "completion", "label": bool}.

Read layouts: TRL's unpaired preference ({prompt, completion, label}: both strings, or both message lists),
LLaMA-Factory's kto alpaca ({instruction, input, system, history, output, kto_tag}) and sharegpt/messages
({conversations | messages, kto_tag}; the last message, an assistant reply, is the completion). The label
is read from `label` or `kto_tag`: true/false, or 1/0; the strings "true"/"false" are an error (a quoted
"false" would train as desirable in any code that tests truth). Output keeps TRL's two shapes: both strings,
or both message lists (a conversation's prompt and its assistant reply), plus `tools` when the row has them
(TRL renders them with the chat template). Other columns are not carried over.
"""

from __future__ import annotations

from mg_data.conversation import check_messages, parse_json_field, type_name
from mg_data.errors import RowError
from mg_data.formats import alpaca, messages, sharegpt
from mg_data.tasks.fields import pick

LABEL = ("label", "kto_tag")
# The fields each conversation layout reads; the label and any other column are not part of the conversation.
ALPACA = ("instruction", "input", "system", "history", "prompt", "response", "output", "tools")
SHAREGPT = ("conversations", "system", "tools")
MESSAGES = ("messages", "tools")


def normalize(row, warn) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a kto row must be an object, got {type_name(row)}")
    label = _label(row)
    if "completion" in row:
        example = _trl(row)
    elif "conversations" in row:
        example = _split(sharegpt.to_conversation(_only(row, SHAREGPT)))
    elif "messages" in row:
        example = _split(messages.to_conversation(_only(row, MESSAGES)))
    elif row.keys() & alpaca.TEXT_KEYS:
        example = _split(alpaca.to_conversation(_only(row, ALPACA)))
    else:
        raise RowError(
            "not a kto row: expected prompt/completion/label (TRL), alpaca (instruction/output) "
            "or a conversation (messages, conversations) with kto_tag"
        )
    example["label"] = label
    return example


def _label(row: dict) -> bool:
    key, value = pick(row, LABEL)
    if key is None:
        raise RowError("missing field 'label' (or 'kto_tag'): true for a desirable answer, false otherwise")
    if isinstance(value, bool):
        return value
    # 0/1 is what CSV and Parquet exports of a bool column often hold; any other number is a mistake.
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        raise RowError(f"{key} is the string {value!r}; write true or false without quotes")
    raise RowError(f"{key} must be true or false (or 1/0), got {type_name(value)} {value!r}")


def _trl(row: dict) -> dict:
    if "prompt" not in row:
        raise RowError("missing field 'prompt'")
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, str) and isinstance(completion, str):
        if not prompt.strip():
            raise RowError("prompt is empty")
        if not completion.strip():
            raise RowError("completion is empty")
        return {"prompt": prompt, "completion": completion}
    if isinstance(prompt, list) and isinstance(completion, list):
        if not completion or not (
            isinstance(completion[0], dict) and completion[0].get("role") == "assistant"
        ):
            raise RowError("completion must start with an assistant message")
        check_messages(prompt + completion)
        example = {"prompt": prompt, "completion": completion}
        if row.get("tools"):  # TRL renders them into the chat template
            example["tools"] = parse_json_field(row["tools"], "tools")
        return example
    raise RowError(
        "prompt and completion must both be strings or both be lists of messages, "
        f"got {type_name(prompt)} and {type_name(completion)}"
    )


def _only(row: dict, keys: tuple[str, ...]) -> dict:
    return {k: row[k] for k in keys if k in row}


def _split(conv: dict) -> dict:
    """A checked conversation ending in an assistant reply: that reply is the completion, the rest the
    prompt."""
    turns = conv["messages"]
    example = {"prompt": turns[:-1], "completion": turns[-1:]}
    if conv.get("tools"):
        example["tools"] = conv["tools"]
    return example
