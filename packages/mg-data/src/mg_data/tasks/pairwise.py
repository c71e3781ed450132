"""rm / dpo: a prompt and a chosen and a rejected answer -> {"prompt", "chosen", "rejected"}.

Read layouts: TRL standard ({prompt?, chosen, rejected} strings), TRL conversational (message lists,
prompt given or implicit as the shared prefix of chosen and rejected), LLaMA-Factory alpaca
({instruction, input, system, history, chosen, rejected}) and sharegpt ({conversations, chosen: {from,
value}, rejected: {...}}; the conversation ends with the user's turn, each answer is a gpt or function_call
turn). The misspelling `choosen` (the seed's) is read as `chosen` with a warning.
Output keeps TRL's two shapes: all strings, or all message lists (plus `tools` when the row has them).
"""

from __future__ import annotations

from mg_data.conversation import check_messages, type_name
from mg_data.errors import RowError
from mg_data.formats import alpaca, sharegpt


def normalize(row, warn) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a preference row must be an object, got {type_name(row)}")
    if "chosen" not in row and "choosen" in row:
        warn("field 'choosen' is read as 'chosen' (please rename it)")
        row = {**row, "chosen": row["choosen"]}
        del row["choosen"]
    for key in ("chosen", "rejected"):
        if key not in row:
            raise RowError(f"missing field {key!r}")
    if "conversations" in row:
        example = _from_pair(sharegpt.to_pairwise(row))
    elif "instruction" in row or "history" in row or "system" in row:
        fields = ("instruction", "input", "system", "history", "prompt", "tools", "chosen", "rejected")
        example = _from_pair(alpaca.to_pairwise({k: row[k] for k in fields if k in row}))
    elif isinstance(row["chosen"], list):
        example = _conversational(row)
    else:
        example = _standard(row)
    if example["chosen"] == example["rejected"]:
        raise RowError("chosen and rejected are identical")
    return example


def _standard(row: dict) -> dict:
    example = {}
    for key in ("prompt", "chosen", "rejected"):
        value = row.get(key, "")
        if not isinstance(value, str):
            raise RowError(f"{key} must be a string like the other fields, got {type_name(value)}")
        if key != "prompt" and not value.strip():
            raise RowError(f"{key} is empty")
        example[key] = value
    return example


def _conversational(row: dict) -> dict:
    chosen, rejected = row["chosen"], row["rejected"]
    for key, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, list) or not value:
            raise RowError(f"{key} must be a non-empty list of messages like the other answer")
    prompt = row.get("prompt")
    if prompt is None:  # implicit prompt: the messages chosen and rejected share
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
    if not isinstance(prompt, list):
        raise RowError(f"prompt must be a list of messages when chosen/rejected are, got {type_name(prompt)}")
    for key, answer in (("chosen", chosen), ("rejected", rejected)):
        if prompt:
            check_messages(prompt + answer)
        else:
            _check_answer(answer, key)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _check_answer(answer: list, key: str) -> None:
    last = answer[-1]
    if not (
        isinstance(last, dict) and last.get("role") == "assistant" and isinstance(last.get("content"), str)
    ):
        raise RowError(f"{key} must end with an assistant message")
    if not last["content"].strip():
        raise RowError(f"{key} is empty")


def _from_pair(pair: dict) -> dict:
    """The example of a LLaMA-Factory pairwise row, read by its format (mg_data.formats)."""
    example = {"prompt": pair["messages"], "chosen": [pair["chosen"]], "rejected": [pair["rejected"]]}
    if pair.get("tools"):  # TRL renders them into the chat template
        example["tools"] = pair["tools"]
    return example
