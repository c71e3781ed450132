import json

import pytest

from mg_data import convert_row, detect
from mg_data.errors import RowError
from mg_data.formats import alpaca, messages, sharegpt


def test_detect_by_keys(samples):
    assert [detect(r) for r in samples["alpaca"]] == ["alpaca"] * 3
    assert [detect(r) for r in samples["sharegpt"]] == ["sharegpt"] * 2
    assert [detect(r) for r in samples["messages"]] == ["messages"] * 2
    assert detect({"text": "plain"}) is None


def test_alpaca_multi_turn_history_becomes_earlier_turns(samples):
    conv = alpaca.to_conversation(samples["alpaca"][0])
    assert [m["role"] for m in conv["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert conv["messages"][1]["content"] == "你好"
    assert conv["messages"][-2]["content"] == "好闷啊，打开车窗"
    assert conv["id"] == "car-001"  # unknown fields ride along


def test_classic_alpaca_joins_instruction_and_input(samples):
    conv = alpaca.to_conversation(samples["alpaca"][1])
    assert conv["messages"][0] == {"role": "user", "content": "把下面的句子翻译成英文\n今天天气很好。"}
    assert conv["messages"][1]["content"] == "The weather is nice today."


def test_alpaca_round_trip_is_lossless(samples):
    for row in samples["alpaca"]:
        back = convert_row(convert_row(row, to="messages"), to="alpaca")
        if "instruction" in row:  # the classic split is joined, as documented
            assert back == {"prompt": row["instruction"] + "\n" + row["input"], "response": row["output"]}
        else:
            assert back == row


def test_sharegpt_round_trip_is_lossless(samples):
    for row in samples["sharegpt"]:
        assert convert_row(convert_row(row, to="messages"), to="sharegpt") == row


def test_sharegpt_function_call_becomes_tool_calls(samples):
    conv = sharegpt.to_conversation(samples["sharegpt"][0])
    call = conv["messages"][2]
    assert call["role"] == "assistant"
    assert call["tool_calls"] == [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "北京"}}}
    ]
    assert conv["messages"][3] == {"role": "tool", "content": '{"temp": 21, "sky": "晴"}'}
    assert conv["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert conv["tools"][0]["function"]["name"] == "get_weather"


def test_tools_json_round_trips_as_the_same_value_whatever_its_whitespace(samples):
    row = dict(
        samples["sharegpt"][0], tools=json.dumps(json.loads(samples["sharegpt"][0]["tools"]), indent=4)
    )
    back = convert_row(convert_row(row, to="messages"), to="sharegpt")
    assert json.loads(back["tools"]) == json.loads(row["tools"])


def test_messages_reads_bare_list_and_string_arguments(samples):
    conv = messages.to_conversation(samples["messages"][1])
    assert conv["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert conv["source"] == "crm"
    assert messages.to_conversation(samples["messages"][0])["messages"][0]["role"] == "system"


def test_messages_to_sharegpt_and_back(samples):
    conv = messages.to_conversation(samples["messages"][1])
    sg = sharegpt.from_conversation(conv)
    assert [t["from"] for t in sg["conversations"]] == ["human", "function_call", "observation", "gpt"]
    assert messages.to_conversation(convert_row(sg, to="messages")) == conv


def test_alpaca_cannot_hold_tool_calls(samples):
    with pytest.raises(RowError, match="alpaca cannot hold tool calls"):
        convert_row(samples["sharegpt"][0], to="alpaca")


def test_sharegpt_cannot_hold_text_with_tool_calls_or_parallel_results():
    call = {"type": "function", "function": {"name": "f", "arguments": {}}}
    both = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "let me look", "tool_calls": [call]},
        {"role": "tool", "content": "r"},
        {"role": "assistant", "content": "a"},
    ]
    with pytest.raises(RowError, match="both text and tool calls"):
        convert_row(both, to="sharegpt")
    parallel = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [call, call]},
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
        {"role": "assistant", "content": "a"},
    ]
    with pytest.raises(RowError, match="several tool results in a row"):
        convert_row(parallel, to="sharegpt")


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"prompt": "q"}, "missing field 'response' (or 'output')"),
        ({"prompt": "q", "response": ""}, "empty response: the last assistant message has no content"),
        ({"prompt": 3, "response": "a"}, "prompt must be a string, got int"),
        (
            {"prompt": "q", "response": "a", "history": [["only one"]]},
            "history[0] must be a [query, answer] pair of strings",
        ),
        (
            {"prompt": "q", "response": "a", "tools": "{not json"},
            "tools is not valid JSON: Expecting property name enclosed in double quotes at column 2",
        ),
    ],
)
def test_alpaca_errors(row, reason):
    with pytest.raises(RowError) as e:
        alpaca.to_conversation(row)
    assert str(e.value) == reason


@pytest.mark.parametrize(
    "row, reason",
    [
        (
            {"conversations": [{"from": "human", "value": "q"}, {"from": "robot", "value": "a"}]},
            "conversations[1].from is 'robot'; expected human, gpt, system, function_call or observation",
        ),
        (
            {
                "conversations": [
                    {"from": "human", "value": "q"},
                    {"from": "function_call", "value": "not json"},
                    {"from": "gpt", "value": "a"},
                ]
            },
            "conversations[1] (function_call) is not valid JSON: Expecting value at column 1",
        ),
        ({"conversations": "q"}, "conversations must be a list of {from, value} turns, got a string"),
        (
            {"conversations": [{"from": "gpt", "value": "a"}]},
            "messages[0]: roles must alternate, but assistant follows nothing",
        ),
    ],
)
def test_sharegpt_errors(row, reason):
    with pytest.raises(RowError) as e:
        sharegpt.to_conversation(row)
    assert str(e.value) == reason
