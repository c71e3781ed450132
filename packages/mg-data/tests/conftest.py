"""Real-looking rows in Chinese and English: multi-turn, system prompts, tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "查询天气",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]

ALPACA = [
    {
        "prompt": "好闷啊，打开车窗",
        "response": "好的，已为您打开车窗。",
        "system": "你是车载语音助手。",
        "history": [["你好", "您好，有什么可以帮您？"], ["现在几点了？", "现在是下午三点。"]],
        "id": "car-001",
    },
    {
        "instruction": "把下面的句子翻译成英文",
        "input": "今天天气很好。",
        "output": "The weather is nice today.",
    },
    {"prompt": "How do I reset my password?", "response": 'Click "Forgot password" on the login page. 🙂'},
]

SHAREGPT = [
    {
        "conversations": [
            {"from": "human", "value": "北京今天天气怎么样？"},
            {
                "from": "function_call",
                "value": json.dumps(
                    {"name": "get_weather", "arguments": {"city": "北京"}}, ensure_ascii=False
                ),
            },
            {"from": "observation", "value": '{"temp": 21, "sky": "晴"}'},
            {"from": "gpt", "value": "北京今天晴，21度。"},
        ],
        "system": "You are a helpful assistant.",
        "tools": json.dumps(WEATHER_TOOLS, ensure_ascii=False),
    },
    {
        "conversations": [
            {"from": "human", "value": "Hi!"},
            {"from": "gpt", "value": "Hello! How can I help?"},
            {"from": "human", "value": "我的订单什么时候到？"},
            {"from": "gpt", "value": "预计明天送达。"},
        ]
    },
]

MESSAGES = [
    [
        {"role": "system", "content": "你是客服。"},
        {"role": "user", "content": "退货流程是什么？"},
        {"role": "assistant", "content": "请在订单页点击“申请退货”。"},
    ],
    {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "content": "18C, cloudy"},
            {"role": "assistant", "content": "It is 18°C and cloudy in Paris."},
        ],
        "tools": WEATHER_TOOLS,
        "source": "crm",
    },
]


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return path


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def mg_data(*args, **kwargs) -> subprocess.CompletedProcess:
    """The real command, as a user runs it (a subprocess, not click's test runner)."""
    return subprocess.run(
        [sys.executable, "-m", "mg_data", *map(str, args)], capture_output=True, text=True, **kwargs
    )


@pytest.fixture
def samples():
    return {"alpaca": ALPACA, "sharegpt": SHAREGPT, "messages": MESSAGES}
