"""A LLaMA-Factory dataset folder of our own: small data in every layout LLaMA-Factory 0.9.5's
data/dataset_info.json declares (alpaca, alpaca ranking, sharegpt with from/value and with role/content tags,
glaive-style tools, dpo_en_demo-style, kto_en_demo-style, pt jsonl, .txt, a folder, csv), and the examples
mg-data must read from each, written out by hand."""

from __future__ import annotations

import json
from pathlib import Path

TOOLS = json.dumps(
    [
        {
            "name": "get_weather",
            "description": "查询天气",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    ensure_ascii=False,
)
CALL = json.dumps({"name": "get_weather", "arguments": {"city": "北京"}}, ensure_ascii=False)

ALPACA_SFT = [
    {
        "instruction": "把下面的句子翻译成英文",
        "input": "今天天气很好。",
        "output": "The weather is nice today.",
        "system": "not read: the entry names no system column",
    },
    {"instruction": "你好", "input": "", "output": "您好！有什么可以帮您？"},
]
# openorca-style column names, with a system prompt and earlier turns
ALPACA_COLUMNS = [
    {
        "question": "现在几点了？",
        "answer": "现在是下午三点。",
        "system_prompt": "你是车载语音助手。",
        "turns": [["你好", "您好，有什么可以帮您？"]],
    },
    {"question": "Open the window", "answer": "Done."},
]
ALPACA_PREF = [
    {"instruction": "介绍北京", "input": "", "chosen": "北京是中国的首都。", "rejected": "不知道"},
    {"instruction": "Translate", "input": "猫", "chosen": "cat", "rejected": "dog"},
]
SHAREGPT = [
    {
        "conversations": [
            {"from": "human", "value": "Hi!"},
            {"from": "gpt", "value": "Hello! How can I help?"},
            {"from": "human", "value": "我的订单什么时候到？"},
            {"from": "gpt", "value": "预计明天送达。"},
        ],
        "system": "你是客服。",
    },
    {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
]
# open_thoughts-style: role/content tags, the system prompt as the first message
ROLE_CONTENT = [
    {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris."},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "退货流程是什么？"},
            {"role": "assistant", "content": "在订单页申请退货。"},
        ]
    },
]
GLAIVE = [
    {
        "conversations": [
            {"from": "human", "value": "北京今天天气怎么样？"},
            {"from": "function_call", "value": CALL},
            {"from": "observation", "value": '{"temp": 21, "sky": "晴"}'},
            {"from": "gpt", "value": "北京今天晴，21度。"},
        ],
        "tools": TOOLS,
    }
]
DPO = [
    {
        "conversations": [{"from": "human", "value": "Name a prime number."}],
        "chosen": {"from": "gpt", "value": "7"},
        "rejected": {"from": "gpt", "value": "8"},
    },
    {
        "conversations": [
            {"from": "human", "value": "你好"},
            {"from": "gpt", "value": "你好！"},
            {"from": "human", "value": "讲个笑话"},
        ],
        "chosen": {"from": "gpt", "value": "为什么数学书很忧郁？因为它有太多问题。"},
        "rejected": {"from": "gpt", "value": "不讲。"},
    },
]
KTO = [
    {
        "messages": [{"content": "Summarize: the FTC fines spyware makers.", "role": "user"}],
        "label": True,
    },
    {
        "messages": [{"content": "What is 3*3?", "role": "user"}, {"content": "6", "role": "assistant"}],
        "label": False,
    },
]
KTO[0]["messages"].append({"content": "Regulators are going after spyware.", "role": "assistant"})
PT = [{"text": "长颈鹿是世界上最高的动物。"}, {"text": "Giraffes sleep for about two hours a day."}]
TXT = "Anarchism is a political philosophy.\n\nAutism is a neurodevelopmental condition.\r\n"
PARTS = {
    "part-1.jsonl": [{"instruction": "一", "input": "", "output": "one"}],
    "part-2.jsonl": [
        {"instruction": "二", "input": "", "output": "two"},
        {"instruction": "三", "input": "", "output": "three"},
    ],
}
CSV = 'instruction,input,output\n把句子翻译成英文,你好,Hello\n"Write two lines",,"line one\nline two"\n'
MANY = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(6)]

INFO = {
    "alpaca_sft": {"file_name": "alpaca_sft.json"},
    "alpaca_columns": {
        "file_name": "alpaca_columns.json",
        "columns": {
            "prompt": "question",
            "response": "answer",
            "system": "system_prompt",
            "history": "turns",
        },
    },
    "alpaca_pref": {
        "file_name": "alpaca_pref.jsonl",
        "ranking": True,
        "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"},
    },
    "sharegpt": {
        "file_name": "sharegpt.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "system": "system"},
    },
    "role_content": {
        "file_name": "role_content.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    },
    "glaive": {
        "file_name": "glaive.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
    },
    "dpo": {
        "file_name": "dpo.json",
        "ranking": True,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    },
    "kto": {
        "file_name": "kto.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "kto_tag": "label"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    },
    "pt": {"file_name": "pt.jsonl", "columns": {"prompt": "text"}},
    "txt": {"file_name": "wiki.txt", "columns": {"prompt": "text"}},
    "folder": {"file_name": "parts"},
    "csv": {"file_name": "alpaca.csv"},
    "sampled": {"file_name": "many.jsonl", "split": "train[1:-1]", "num_samples": 7},
    "sliced": {"file_name": "many.jsonl", "split": "train[50%:]"},
}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def conv(*messages: dict, **extra) -> dict:
    return {"messages": list(messages), **extra}


# What mg-data must read from each entry (task, examples in order), written out from the rows above.
EXPECTED = {
    "alpaca_sft": (
        "sft",
        [
            conv(user("把下面的句子翻译成英文\n今天天气很好。"), assistant("The weather is nice today.")),
            conv(user("你好"), assistant("您好！有什么可以帮您？")),
        ],
    ),
    "alpaca_columns": (
        "sft",
        [
            conv(
                {"role": "system", "content": "你是车载语音助手。"},
                user("你好"),
                assistant("您好，有什么可以帮您？"),
                user("现在几点了？"),
                assistant("现在是下午三点。"),
            ),
            conv(user("Open the window"), assistant("Done.")),
        ],
    ),
    "alpaca_pref": (
        "dpo",
        [
            {
                "prompt": [user("介绍北京")],
                "chosen": [assistant("北京是中国的首都。")],
                "rejected": [assistant("不知道")],
            },
            {"prompt": [user("Translate\n猫")], "chosen": [assistant("cat")], "rejected": [assistant("dog")]},
        ],
    ),
    "sharegpt": (
        "sft",
        [
            conv(
                {"role": "system", "content": "你是客服。"},
                user("Hi!"),
                assistant("Hello! How can I help?"),
                user("我的订单什么时候到？"),
                assistant("预计明天送达。"),
            ),
            conv(user("2+2?"), assistant("4")),
        ],
    ),
    "role_content": (
        "sft",
        [
            conv(
                {"role": "system", "content": "You are terse."},
                user("Capital of France?"),
                assistant("Paris."),
            ),
            conv(user("退货流程是什么？"), assistant("在订单页申请退货。")),
        ],
    ),
    "glaive": (
        "sft",
        [
            conv(
                user("北京今天天气怎么样？"),
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": {"city": "北京"}},
                        }
                    ],
                },
                {"role": "tool", "content": '{"temp": 21, "sky": "晴"}'},
                assistant("北京今天晴，21度。"),
                tools=json.loads(TOOLS),
            )
        ],
    ),
    "dpo": (
        "dpo",
        [
            {
                "prompt": [user("Name a prime number.")],
                "chosen": [assistant("7")],
                "rejected": [assistant("8")],
            },
            {
                "prompt": [user("你好"), assistant("你好！"), user("讲个笑话")],
                "chosen": [assistant("为什么数学书很忧郁？因为它有太多问题。")],
                "rejected": [assistant("不讲。")],
            },
        ],
    ),
    "kto": (
        "kto",
        [
            {
                "prompt": [user("Summarize: the FTC fines spyware makers.")],
                "completion": [assistant("Regulators are going after spyware.")],
                "label": True,
            },
            {"prompt": [user("What is 3*3?")], "completion": [assistant("6")], "label": False},
        ],
    ),
    "pt": (
        "pt",
        [{"text": "长颈鹿是世界上最高的动物。"}, {"text": "Giraffes sleep for about two hours a day."}],
    ),
    "txt": (
        "pt",
        [
            {"text": "Anarchism is a political philosophy."},
            {"text": "Autism is a neurodevelopmental condition."},
        ],
    ),
    "folder": (
        "sft",
        [
            conv(user("一"), assistant("one")),
            conv(user("二"), assistant("two")),
            conv(user("三"), assistant("three")),
        ],
    ),
    "csv": (
        "sft",
        [
            conv(user("把句子翻译成英文\n你好"), assistant("Hello")),
            conv(user("Write two lines"), assistant("line one\nline two")),
        ],
    ),
}


def write_rows(path: Path, rows: list, *, lines: bool) -> None:
    if lines:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


def write_info(folder: Path, info: dict) -> Path:
    path = folder / "dataset_info.json"
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def entry_line(info_path: Path, name: str) -> int:
    """The line dataset `name` starts on in a dataset_info.json written by write_info."""
    lines = info_path.read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if text == f'  "{name}": {{')


def make_dataset_dir(folder: Path) -> Path:
    """The folder above, with its dataset_info.json; returns the dataset_info.json path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_rows(folder / "alpaca_sft.json", ALPACA_SFT, lines=False)
    write_rows(folder / "alpaca_columns.json", ALPACA_COLUMNS, lines=False)
    write_rows(folder / "alpaca_pref.jsonl", ALPACA_PREF, lines=True)
    write_rows(folder / "sharegpt.json", SHAREGPT, lines=False)
    write_rows(folder / "role_content.jsonl", ROLE_CONTENT, lines=True)
    write_rows(folder / "glaive.json", GLAIVE, lines=False)
    write_rows(folder / "dpo.json", DPO, lines=False)
    write_rows(folder / "kto.json", KTO, lines=False)
    write_rows(folder / "pt.jsonl", PT, lines=True)
    (folder / "wiki.txt").write_text(TXT, encoding="utf-8")
    (folder / "parts").mkdir(exist_ok=True)
    for name, rows in PARTS.items():
        write_rows(folder / "parts" / name, rows, lines=True)
    (folder / "parts" / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / "alpaca.csv").write_text(CSV, encoding="utf-8")
    write_rows(folder / "many.jsonl", MANY, lines=True)
    return write_info(folder, INFO)
