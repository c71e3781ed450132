import pytest

from mg_data.conversation import check_messages
from mg_data.errors import RowError


def u(text):
    return {"role": "user", "content": text}


def a(text, **kw):
    return {"role": "assistant", "content": text, **kw}


CALL = [{"type": "function", "function": {"name": "lookup", "arguments": {"q": "x"}}}]


def test_accepts_system_multi_turn_and_tool_round():
    msgs = [
        {"role": "system", "content": "sys"},
        u("q1"),
        a("a1"),
        u("q2"),
        a("", tool_calls=CALL),
        {"role": "tool", "content": "r1"},
        {"role": "tool", "content": "r2"},
        a("done"),
    ]
    assert check_messages(msgs) is msgs


@pytest.mark.parametrize(
    "msgs, reason",
    [
        ([u("q"), u("q2"), a("a")], "messages[1]: roles must alternate, but user follows user"),
        ([a("a")], "messages[0]: roles must alternate, but assistant follows nothing"),
        (
            [u("q"), a("a"), {"role": "system", "content": "s"}],
            "messages[2]: a system message may only come first",
        ),
        ([u("q"), a("")], "empty response: the last assistant message has no content"),
        ([u("q"), a("  \n")], "empty response: the last assistant message has no content"),
        ([u("q")], "the conversation must end with an assistant reply, but ends with user"),
        (
            [u("q"), a("a"), {"role": "tool", "content": "r"}],
            "messages[2]: a tool message must answer an assistant message with tool_calls",
        ),
        ([u("q"), a("", tool_calls=CALL)], "the conversation ends with a tool call and no assistant reply"),
        (
            [u("q"), {"role": "bot", "content": "a"}],
            "messages[1].role is 'bot'; expected one of system, user, assistant, tool",
        ),
        ([u("q"), {"role": "assistant", "content": 3}], "messages[1].content must be a string, got int"),
        ([u(""), a("a")], "messages[0]: empty user message"),
        ([], "messages is empty"),
        ("hi", "messages must be a list, got a string"),
        (
            [u("q"), a("", tool_calls=[{"function": {"name": "f", "arguments": "x"}}]), a("b")],
            "messages[1].tool_calls[0].function.arguments must be an object",
        ),
    ],
)
def test_rejects_with_a_reason(msgs, reason):
    with pytest.raises(RowError) as e:
        check_messages(msgs)
    assert str(e.value) == reason


def test_prompt_only_allowed_when_no_response_needed():
    assert check_messages([u("q")], need_response=False)
