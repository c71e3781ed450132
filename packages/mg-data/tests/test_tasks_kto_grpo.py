"""The kto and grpo schemas: every layout they read, every error, and the real CLI on small files."""

import json

import pytest
from conftest import mg_data, read_jsonl, write_jsonl

from mg_data.errors import RowError
from mg_data.tasks import grpo, kto

USER = {"role": "user", "content": "2+2?"}
GOOD = {"role": "assistant", "content": "4"}
SYSTEM = {"role": "system", "content": "你是数学老师。"}


def norm(module, row):
    warnings = []
    return module.normalize(row, warnings.append), warnings


# kto


def test_kto_trl_standard_and_conversational():
    assert norm(kto, {"prompt": "天空是", "completion": "蓝色的。", "label": True})[0] == {
        "prompt": "天空是",
        "completion": "蓝色的。",
        "label": True,
    }
    ex, warnings = norm(kto, {"prompt": [SYSTEM, USER], "completion": [GOOD], "label": False})
    assert ex == {"prompt": [SYSTEM, USER], "completion": [GOOD], "label": False}
    assert warnings == []


def test_kto_keeps_tools_for_the_chat_template():
    tools = [{"type": "function", "function": {"name": "calc", "parameters": {}}}]
    ex, _ = norm(kto, {"prompt": [USER], "completion": [GOOD], "label": True, "tools": json.dumps(tools)})
    assert ex["tools"] == tools


def test_kto_llamafactory_alpaca():
    ex, _ = norm(
        kto,
        {
            "instruction": "把句子翻译成英文",
            "input": "今天天气很好。",
            "output": "The weather is nice today.",
            "system": "You translate.",
            "kto_tag": False,
            "id": 7,
        },
    )
    assert ex == {
        "prompt": [
            {"role": "system", "content": "You translate."},
            {"role": "user", "content": "把句子翻译成英文\n今天天气很好。"},
        ],
        "completion": [{"role": "assistant", "content": "The weather is nice today."}],
        "label": False,
    }


def test_kto_llamafactory_sharegpt_and_messages_last_reply_is_the_completion():
    turns = [
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello!"},
        {"from": "human", "value": "2+2?"},
        {"from": "gpt", "value": "4"},
    ]
    ex, _ = norm(kto, {"conversations": turns, "system": "Be brief.", "kto_tag": True})
    assert ex["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        USER,
    ]
    assert ex["completion"] == [GOOD]
    assert ex["label"] is True
    ex, _ = norm(kto, {"messages": [USER, GOOD], "label": 0})
    assert ex == {"prompt": [USER], "completion": [GOOD], "label": False}


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"prompt": "p", "completion": "c"}, "missing field 'label' \\(or 'kto_tag'\\)"),
        (
            {"prompt": "p", "completion": "c", "label": "true"},
            "label is the string 'true'; write true or false",
        ),
        ({"prompt": "p", "completion": "c", "kto_tag": "False"}, "kto_tag is the string 'False'"),
        (
            {"prompt": "p", "completion": "c", "label": 2},
            "label must be true or false \\(or 1/0\\), got int 2",
        ),
        ({"prompt": "p", "completion": "c", "label": 1.0}, "label must be true or false"),
        ({"prompt": "p", "completion": "c", "label": None}, "label must be true or false"),
        ({"completion": "c", "label": True}, "missing field 'prompt'"),
        ({"prompt": "p", "completion": " ", "label": True}, "completion is empty"),
        ({"prompt": "", "completion": "c", "label": True}, "prompt is empty"),
        ({"prompt": "p", "completion": [GOOD], "label": True}, "both be strings or both be lists"),
        ({"prompt": [USER], "completion": [USER], "label": True}, "completion must start with an assistant"),
        ({"prompt": [GOOD], "completion": [GOOD], "label": True}, "assistant follows nothing"),
        ({"messages": [USER, GOOD, USER], "label": True}, "must end with an assistant reply"),
        ({"instruction": "q", "label": True}, "missing field 'response' \\(or 'output'\\)"),
        ({"text": "t", "label": True}, "not a kto row"),
        (["p", "c", True], "a kto row must be an object"),
    ],
)
def test_kto_errors(row, reason):
    with pytest.raises(RowError, match=reason):
        norm(kto, row)


def test_kto_one_and_zero_read_as_bools():
    assert norm(kto, {"prompt": "p", "completion": "c", "label": 1})[0]["label"] is True
    assert norm(kto, {"prompt": "p", "completion": "c", "kto_tag": 0})[0]["label"] is False


# grpo


def test_grpo_string_prompt_keeps_extra_columns_as_they_are():
    row = {"prompt": "What is 6*7?", "answer": "42", "meta": {"level": 1, "tags": ["math"]}}
    assert norm(grpo, row)[0] == row


def test_grpo_conversational_prompt():
    ex, _ = norm(grpo, {"prompt": [SYSTEM, USER], "solution": "4"})
    assert ex == {"prompt": [SYSTEM, USER], "solution": "4"}


def test_grpo_alpaca_keeps_the_output_as_a_reference_column():
    ex, _ = norm(grpo, {"instruction": "计算", "input": "6*7", "system": "只写数字。", "output": "42"})
    assert ex == {
        "prompt": [
            {"role": "system", "content": "只写数字。"},
            {"role": "user", "content": "计算\n6*7"},
        ],
        "output": "42",
    }
    ex, _ = norm(grpo, {"prompt": "2+2?", "history": [["Hi", "Hello!"]], "answer": "4"})
    assert ex["prompt"][-1] == USER and ex["answer"] == "4"


def test_grpo_messages_and_sharegpt_ending_with_the_user():
    ex, _ = norm(grpo, {"messages": [SYSTEM, USER], "answer": "4"})
    assert ex == {"prompt": [SYSTEM, USER], "answer": "4"}
    ex, _ = norm(grpo, {"conversations": [{"from": "human", "value": "2+2?"}], "answer": "4"})
    assert ex == {"prompt": [USER], "answer": "4"}


def test_grpo_prompt_may_end_with_a_tool_result():
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "calc", "arguments": {"x": "2+2"}}}],
    }
    prompt = [USER, call, {"role": "tool", "content": "4"}]
    assert norm(grpo, {"prompt": prompt})[0] == {"prompt": prompt}


@pytest.mark.parametrize("column", sorted(grpo.REWARD_ARGUMENTS))
def test_grpo_rejects_a_column_named_like_a_reward_argument(column):
    with pytest.raises(RowError, match=f"column '{column}' collides with the argument TRL passes"):
        norm(grpo, {"prompt": "p", column: "x"})


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"prompt": "p", "completion": "c"}, "column 'completion' never reaches the reward functions"),
        ({"messages": [USER, GOOD]}, "the conversation ends with an assistant message; a grpo prompt ends"),
        ({"prompt": [USER, GOOD], "answer": "4"}, "prompt ends with an assistant message"),
        ({"prompt": "  "}, "prompt is empty"),
        ({"prompt": 3}, "prompt must be a string or a list of messages, got int"),
        ({"prompt": [GOOD]}, "assistant follows nothing"),
        ({"answer": "4"}, "missing field 'prompt'"),
        ({"messages": [USER], "completions": "x"}, "column 'completions' collides"),
        ("p", "a grpo row must be an object"),
    ],
)
def test_grpo_errors(row, reason):
    with pytest.raises(RowError, match=reason):
        norm(grpo, row)


# the CLI


def test_cli_validate_kto_writes_normalized_rows_and_reports_bad_ones(tmp_path):
    data = write_jsonl(
        tmp_path / "kto.jsonl",
        [
            {"prompt": "天空是", "completion": "蓝色的。", "label": True},
            {"instruction": "2+2?", "output": "5", "kto_tag": False},
            {"prompt": "p", "completion": "c", "label": "true"},
        ],
    )
    r = mg_data("validate", data, "--task", "kto")
    assert r.returncode == 1
    assert f"{data}:3: label is the string 'true'; write true or false without quotes" in r.stderr
    assert "Traceback" not in r.stderr
    out = tmp_path / "out.jsonl"
    r = mg_data("validate", data, "--task", "kto", "-o", out, "--skip-invalid")
    assert r.returncode == 0, r.stderr
    assert [row["label"] for row in read_jsonl(out)] == [True, False]
    r = mg_data("stats", data, "--task", "kto", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["labels"] == {"True": 1, "False": 1}


def test_cli_validate_grpo(tmp_path):
    data = write_jsonl(
        tmp_path / "grpo.jsonl",
        [
            {"prompt": [USER], "answer": "4"},
            {"messages": [SYSTEM, USER], "answer": "4"},
            {"prompt": "p", "completions": "x"},
        ],
    )
    out = tmp_path / "out.jsonl"
    r = mg_data("validate", data, "--task", "grpo", "-o", out, "--skip-invalid")
    assert r.returncode == 0, r.stderr
    assert f"{data}:3: column 'completions' collides" in r.stderr
    assert read_jsonl(out) == [{"prompt": [USER], "answer": "4"}, {"prompt": [SYSTEM, USER], "answer": "4"}]
    r = mg_data("stats", data, "--task", "grpo", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["valid"] == 2
