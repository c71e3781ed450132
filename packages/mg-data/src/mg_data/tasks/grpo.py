"""grpo: a prompt for the model to answer, plus any columns the reward functions read -> {"prompt", **extra}.

Read layouts: TRL's prompt-only ({prompt: a string or a message list ending with the user's turn}),
alpaca ({instruction, input, system, history}) and sharegpt/messages ({conversations | messages}, ending
with the user's turn, or a tool result the model answers). Every other column (a reference `answer`, a
`solution`, `tools`, ...) is kept as it is: TRL passes it to each reward function as a keyword argument,
one value per completion. So a column may not take the name of an argument TRL passes itself.
"""

from __future__ import annotations

from mg_data.conversation import check_messages, type_name
from mg_data.errors import RowError
from mg_data.formats import alpaca, messages, sharegpt

# The keyword arguments TRL 1.16's GRPOTrainer._calculate_rewards passes to every reward function itself
# (a column with one of these names fails there with "got multiple values for keyword argument")...
REWARD_ARGUMENTS = frozenset(
    {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)
# ...and the columns it drops before building them (the reward function would never see them).
DROPPED_COLUMNS = frozenset({"completion"})
ALPACA = ("instruction", "input", "prompt", "system", "history")


def normalize(row, warn) -> dict:
    if not isinstance(row, dict):
        raise RowError(f"a grpo row must be an object, got {type_name(row)}")
    if "conversations" in row:
        example = _from_conversation(sharegpt.to_conversation(row, need_response=False))
    elif "messages" in row:
        example = _from_conversation(messages.to_conversation(row, need_response=False))
    elif _is_alpaca(row):
        # The prompt fields become the conversation; response/output, if any, stays a column (a reference
        # answer for the rewards).
        fields = {k: row[k] for k in ALPACA if k in row}
        conv = alpaca.to_conversation(fields, need_response=False)
        example = {"prompt": conv["messages"], **{k: v for k, v in row.items() if k not in fields}}
    elif "prompt" in row:
        example = {**row, "prompt": _prompt(row["prompt"])}
    else:
        raise RowError(
            "missing field 'prompt': expected prompt (a string or messages), alpaca (instruction) "
            "or a conversation (messages, conversations) ending with the user's turn"
        )
    _check_columns(example)
    return example


def _is_alpaca(row: dict) -> bool:
    """instruction/input, or a string prompt with alpaca's system or history beside it."""
    return "instruction" in row or (
        isinstance(row.get("prompt"), str) and ("system" in row or "history" in row)
    )


def _prompt(value) -> str | list[dict]:
    if isinstance(value, str):
        if not value.strip():
            raise RowError("prompt is empty")
        return value
    if isinstance(value, list):
        _check_last_turn(check_messages(value, need_response=False), "prompt")
        return value
    raise RowError(f"prompt must be a string or a list of messages, got {type_name(value)}")


def _from_conversation(conv: dict) -> dict:
    _check_last_turn(conv["messages"], "the conversation")
    extra = {k: v for k, v in conv.items() if k != "messages"}
    return {"prompt": conv["messages"], **extra}


def _check_last_turn(turns: list[dict], what: str) -> None:
    last = turns[-1]["role"]
    if last not in ("user", "tool"):
        raise RowError(
            f"{what} ends with {'an' if last == 'assistant' else 'a'} {last} message; "
            "a grpo prompt ends with the user's turn "
            "(the model writes the reply; put a reference answer in a column such as 'answer')"
        )


def _check_columns(example: dict) -> None:
    for key in example:
        if key in REWARD_ARGUMENTS:
            raise RowError(
                f"column {key!r} collides with the argument TRL passes to reward functions under that "
                "name; rename the column (e.g. 'answer')"
            )
        if key in DROPPED_COLUMNS:
            raise RowError(
                f"column {key!r} never reaches the reward functions (TRL drops it: the model writes the "
                "completion); rename it (e.g. 'answer')"
            )
