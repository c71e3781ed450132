"""mg-data conversion speed and memory against the `datasets` path, measured in the same run.

    uv run nox -s bench            # or: uv run --all-packages --group bench python bench/bench_mg_data_convert.py

Converts the same alpaca JSONL (Chinese and English, single- and multi-turn) to messages JSONL two ways,
each in its own child process so that its peak RSS is its own:
  mg-data:  mg_data.convert_file(src, out, to="messages")
  datasets: load_dataset("json") + map(alpaca -> messages) + to_json
Prints rows/s, peak memory, and the ratio. Goal: >= 3x the datasets path, and mg-data's peak memory
flat (the same at 10% of the rows as at all of them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = [
    {"prompt": "好闷啊，打开车窗", "response": "好的，已为您打开车窗。", "system": "你是车载语音助手。"},
    {"prompt": "How do I reset my password?", "response": "Click 'Forgot password' on the login page."},
    {
        "prompt": "我的快递到哪里了？",
        "response": "请提供订单号，我帮您查询物流。",
        "history": [["你好", "您好，有什么可以帮您？"], ["我买了一台空调", "好的，请问有什么问题？"]],
    },
    {
        "instruction": "Translate to English",
        "input": "今天天气很好。",
        "output": "The weather is nice today.",
    },
]

MG_DATA = """
import sys, mg_data
report = mg_data.convert_file(sys.argv[1], sys.argv[2], to="messages", show_progress=False)
assert report.written == int(sys.argv[3]), report.summary()
"""

DATASETS = """
import sys
from datasets import load_dataset, disable_progress_bars
disable_progress_bars()

def to_messages(row):
    prompt = row["prompt"] if row.get("prompt") is not None else "\\n".join(p for p in (row["instruction"], row["input"]) if p)
    response = row["response"] if row.get("response") is not None else row["output"]
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    for q, a in row.get("history") or []:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return {"messages": messages}

ds = load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[4])
ds = ds.map(to_messages, remove_columns=ds.column_names)
ds.to_json(sys.argv[2], force_ascii=False, lines=True)
assert len(ds) == int(sys.argv[3])
"""


def make_input(path: Path, n: int) -> None:
    lines = [(json.dumps(r, ensure_ascii=False) + "\n").encode() for r in ROWS]
    with open(path, "wb") as f:
        for i in range(n):
            f.write(lines[i % len(lines)])


def measure(code: str, *args: str) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of a child process running `code`."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark child failed: {args}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big, small = tmp / "big.jsonl", tmp / "small.jsonl"
        make_input(big, args.rows)
        make_input(small, args.rows // 10)
        size = big.stat().st_size / 2**20
        print(f"input: {args.rows:,} alpaca rows, {size:.0f} MiB JSONL", flush=True)

        mg_small_s, mg_small_mem = measure(MG_DATA, str(small), str(tmp / "o1.jsonl"), str(args.rows // 10))
        mg_s, mg_mem = measure(MG_DATA, str(big), str(tmp / "o2.jsonl"), str(args.rows))
        ds_s, ds_mem = measure(
            DATASETS, str(big), str(tmp / "o3.jsonl"), str(args.rows), str(tmp / "hf-cache")
        )

    mg_rate, ds_rate = args.rows / mg_s, args.rows / ds_s
    print(f"{'method':<34}{'rows/s':>12}{'peak MiB':>10}")
    print(f"{'mg-data convert (10% of rows)':<34}{args.rows // 10 / mg_small_s:>12,.0f}{mg_small_mem:>10.0f}")
    print(f"{'mg-data convert':<34}{mg_rate:>12,.0f}{mg_mem:>10.0f}")
    print(f"{'datasets load+map+to_json':<34}{ds_rate:>12,.0f}{ds_mem:>10.0f}")
    print(f"speed ratio mg-data / datasets: {mg_rate / ds_rate:.2f}x (goal >= 3x)")
    print(
        f"memory: mg-data peak {mg_mem:.0f} MiB at all rows vs {mg_small_mem:.0f} MiB at 10% "
        f"({'flat' if mg_mem < mg_small_mem * 1.2 + 10 else 'NOT flat'}); datasets peak {ds_mem:.0f} MiB"
    )


if __name__ == "__main__":
    main()
