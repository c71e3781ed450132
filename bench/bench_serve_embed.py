"""Embedding serving throughput: mg-serve's torch engine through HTTP under concurrent clients, against
sentence-transformers' `encode` in-process and against mg-serve with batching off, measured in the same run.

    uv run --all-packages --all-extras --group bench python bench/bench_serve_embed.py [--repeats 3]

All three embed the same few thousand short customer-service texts (one or two sentences of
mg_testing.corpus, 9-44 tokens) with the real all-MiniLM-L6-v2 (fp32, CPU), each in its own process,
in an order rotated every repeat:
  mg-serve batched:    `mg-serve MINILM --port P` (the real command, a uvicorn server on loopback, default
                       --max-batch-tokens 8192 --max-wait-ms 5); --clients concurrent clients (httpx, async,
                       keep-alive) each POST one text per request to /v1/embeddings until all are sent
  sentence-transformers: SentenceTransformer(MINILM).encode(texts, batch_size=B) in a child process, where B
                       is --clients (the texts the server has in flight at once; 32 by default, encode's own
                       default too); --st-batch-size sets it instead
  mg-serve unbatched:  the same command and clients with --max-batch-tokens 1 --max-wait-ms 0: every row goes
                       alone, so one request = one forward (checked in /metrics: 1.0 rows per forward)

Throughput = texts / wall time, and tokens / wall time, where tokens are the texts' real tokens with [CLS] and
[SEP] (no padding), the same count for all three; the servers' `usage.prompt_tokens` must add up to it. The
servers' wall time runs from the first request sent to the last response read, after --warmup requests that
are not counted; the model loading and server start-up are outside it, as is sentence-transformers' loading
and a warm-up encode. The client runs in this process on the same machine, so on a small CPU it takes cycles
from the server: its CPU time is printed. Prints the ratios against the issue's targets (batched >= 0.9x
sentence-transformers, >= 3x unbatched), p50/p99 request latency, and the batch shape the engine chose.
--torch-threads N sets OMP_NUM_THREADS for the servers and sentence-transformers alike (default: torch's own).
Results and the card: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVED_NAME = "minilm"

SENTENCE_TRANSFORMERS = """
import json, sys, time
import torch
from sentence_transformers import SentenceTransformer

texts_file, model_dir, batch, warmup, out = sys.argv[1:6]
texts = json.load(open(texts_file, encoding="utf-8"))
model = SentenceTransformer(model_dir, device="cpu")
model.encode(texts[: int(warmup)], batch_size=int(batch), show_progress_bar=False)
start = time.perf_counter()
vectors = model.encode(texts, batch_size=int(batch), show_progress_bar=False)
seconds = time.perf_counter() - start
assert vectors.shape[0] == len(texts)
json.dump({"seconds": seconds, "threads": torch.get_num_threads()}, open(out, "w"))
"""


def make_texts(n: int, seed: int = 0) -> list[str]:
    """n short customer-service texts: one or two English sentences of mg_testing.corpus, at random."""
    from mg_testing.corpus import ENGLISH

    rng = random.Random(seed)
    return [" ".join(rng.sample(ENGLISH, rng.randint(1, 2))) for _ in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mg_serve_command() -> list[str]:
    """The installed `mg-serve` console script next to this interpreter (the real command)."""
    script = Path(sys.executable).with_name("mg-serve")
    if not script.is_file():
        raise SystemExit(f"no mg-serve command at {script}: install the workspace (uv sync --all-packages)")
    return [str(script)]


class Server:
    """`mg-serve MODEL --port P ...` in a child process, up until /health answers; stopped with SIGTERM."""

    def __init__(self, model: str, flags: list[str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [*mg_serve_command(), model, "--port", str(self.port), "--served-model-name", SERVED_NAME]
        # warning: no access-log line per request (uvicorn's info level), which would cost the server CPU.
        command += ["--log-level", "warning", *flags]
        with open(log, "w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"mg-serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"mg-serve did not answer /health within {timeout:.0f}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Server:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def send_all(url: str, texts: list[str], clients: int, encoding: str) -> dict:
    """`clients` concurrent clients, each POSTing one text per request until every text was sent once.
    Any non-200 answer ends the benchmark: a throughput with errors in it means nothing."""
    import httpx

    pending = iter(range(len(texts)))
    latencies: list[float] = []
    prompt_tokens = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal prompt_tokens
        for i in pending:  # one shared iterator: a client takes the next text when its answer is in
            body = {"model": SERVED_NAME, "input": texts[i], "encoding_format": encoding}
            sent = time.perf_counter()
            response = await http.post(url + "/v1/embeddings", json=body)
            if response.status_code != 200:
                raise SystemExit(f"request {i} failed: {response.status_code} {response.text[:500]}")
            answer = response.json()
            latencies.append(time.perf_counter() - sent)
            if len(answer["data"]) != 1:
                raise SystemExit(f"request {i}: {len(answer['data'])} embeddings for one text")
            prompt_tokens += answer["usage"]["prompt_tokens"]

    async with httpx.AsyncClient(limits=limits, timeout=300) as http:
        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "latencies": latencies, "prompt_tokens": prompt_tokens, "client_cpu": cpu}


def batch_counters(url: str) -> dict[str, float]:
    """The server's totals of batched forwards: their count, rows and padded tokens (from /metrics)."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    names = {
        "forwards": "mg_serve_batch_rows_count",
        "rows": "mg_serve_batch_rows_sum",
        "padded": "mg_serve_batch_tokens_sum",
    }
    values = {}
    for key, name in names.items():
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        if match is None:
            raise SystemExit(f"{name} is missing from {url}/metrics")
        values[key] = float(match.group(1))
    return values


def serve_run(model: str, texts: list[str], args, flags: list[str], log: Path) -> dict:
    with Server(model, flags, log) as server:
        warm = [texts[i % len(texts)] for i in range(args.warmup)]
        asyncio.run(send_all(server.url, warm, args.clients, args.encoding_format))
        before = batch_counters(server.url)
        result = asyncio.run(send_all(server.url, texts, args.clients, args.encoding_format))
        after = batch_counters(server.url)
    forwards = after["forwards"] - before["forwards"]
    result["rows_per_forward"] = (after["rows"] - before["rows"]) / forwards
    result["padded_per_forward"] = (after["padded"] - before["padded"]) / forwards
    result["padded"] = after["padded"] - before["padded"]
    return result


def st_run(model: str, texts_file: Path, batch: int, warmup: int, out: Path) -> float:
    argv = [sys.executable, "-c", SENTENCE_TRANSFORMERS, str(texts_file), model, str(batch), str(warmup)]
    proc = subprocess.run([*argv, str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"sentence-transformers child failed:\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())["seconds"]


def card() -> str:
    from importlib.metadata import version

    import torch

    packages = ["torch", "transformers", "sentence-transformers", "fastapi", "uvicorn", "httpx"]
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    return (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, torch CPU threads = {torch.get_num_threads()}, "
        f"Python {platform.python_version()}; {versions}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000, help="texts embedded by each peer")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument("--warmup", type=int, default=128, help="requests (or texts) before the timing")
    parser.add_argument("--repeats", type=int, default=3, help="run the three peers this many times")
    parser.add_argument(
        "--st-batch-size",
        type=int,
        default=None,
        help="sentence-transformers' batch size (default: --clients, the texts the server has in flight at "
        "once; 32, encode's own default, with the default --clients)",
    )
    parser.add_argument(
        "--encoding-format",
        choices=["base64", "float"],
        default="base64",
        help="what the clients ask for (base64: the openai client's default)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for the servers and sentence-transformers alike (default: torch's own, one per "
        "core); 1 keeps torch's threads from fighting other load on a busy machine",
    )
    parser.add_argument("--model", default=None, help="default: all-MiniLM-L6-v2 from mg-testing")
    args = parser.parse_args()
    if args.torch_threads is not None:  # before torch is imported here; the children inherit it
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)
    if args.model is None:
        from mg_testing.real_models import minilm_dir

        args.model = str(minilm_dir())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    texts = make_texts(args.texts)
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(args.model)(texts)["input_ids"]]
    tokens = sum(lengths)
    print(f"card: {card()}", flush=True)
    print(
        f"all-MiniLM-L6-v2 fp32, {len(texts)} texts of {min(lengths)}-{max(lengths)} tokens "
        f"(mean {tokens / len(texts):.1f}), {args.clients} clients, one text per request, "
        f"encoding_format {args.encoding_format}",
        flush=True,
    )
    peers = ["batched", "st", "unbatched"]
    flags = {"batched": [], "unbatched": ["--max-batch-tokens", "1", "--max-wait-ms", "0"]}
    seconds: dict[str, list[float]] = {p: [] for p in peers}
    served: dict[str, list[dict]] = {"batched": [], "unbatched": []}
    st_batch = args.st_batch_size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        texts_file = tmp / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        for repeat in range(args.repeats):
            # Rotated, so that no peer always runs on a machine the previous one has just warmed.
            for peer in peers[repeat % 3 :] + peers[: repeat % 3]:
                if peer == "st":
                    if st_batch is None:
                        # Not the server's rows per forward: it groups the texts waiting together by length
                        # into several forwards, as encode sorts a batch by length and cuts it.
                        st_batch = args.clients
                    seconds[peer].append(
                        st_run(args.model, texts_file, st_batch, args.warmup, tmp / "st.json")
                    )
                else:
                    result = serve_run(args.model, texts, args, flags[peer], tmp / f"{peer}.log")
                    if result["prompt_tokens"] != tokens:
                        raise SystemExit(
                            f"{peer}: the server counted {result['prompt_tokens']} prompt tokens, not {tokens}"
                        )
                    served[peer].append(result)
                    seconds[peer].append(result["seconds"])
                print(
                    f"  repeat {repeat + 1} {peer:<10} {len(texts) / seconds[peer][-1]:8.1f} texts/s",
                    flush=True,
                )
    report(texts, lengths, seconds, served, st_batch, args.repeats)


def st_padded(texts: list[str], lengths: list[int], batch: int) -> int:
    """The padded positions of sentence-transformers' batches: `encode` sorts all the texts by length in
    characters, longest first, before it cuts them into batches, each padded to its longest text."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunks = [order[i : i + batch] for i in range(0, len(order), batch)]
    return sum(max(lengths[i] for i in chunk) * len(chunk) for chunk in chunks)


def report(texts: list[str], lengths: list[int], seconds, served, st_batch: int, repeats: int) -> None:
    n, tokens = len(texts), sum(lengths)
    rates = {peer: [n / s for s in values] for peer, values in seconds.items()}
    median = {peer: statistics.median(values) for peer, values in rates.items()}
    names = {
        "batched": "mg-serve torch engine, batched (defaults)",
        "st": f"sentence-transformers encode, batch {st_batch}",
        "unbatched": "mg-serve, one request = one forward",
    }
    each = f"median of {repeats}" if repeats > 1 else "1 run"
    print(f"{'':<44}{'texts/s':>10}{'tokens/s':>10}  ({each}; every run)")
    for peer, name in names.items():
        runs = "[" + ", ".join(f"{r:.1f}" for r in rates[peer]) + "]"
        print(f"{name:<44}{median[peer]:>10.1f}{median[peer] * tokens / n:>10.0f}  {runs}")
    for peer in ("batched", "unbatched"):
        runs = served[peer]
        latencies = sorted(x for run in runs for x in run["latencies"])
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        rows = statistics.mean(run["rows_per_forward"] for run in runs)
        padded = statistics.mean(run["padded_per_forward"] for run in runs)
        share = statistics.mean(1 - tokens / run["padded"] for run in runs)
        cpu = statistics.mean(run["client_cpu"] / run["seconds"] for run in runs)
        print(
            f"  {peer}: {rows:.1f} rows and {padded:.0f} padded tokens per forward ({share:.0%} padding); "
            f"latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; the client used {cpu:.0%} of a core"
        )
    print(f"  sentence-transformers: {1 - tokens / st_padded(texts, lengths, st_batch):.0%} padding")
    print(f"batched / sentence-transformers: {median['batched'] / median['st']:.2f}x (target >= 0.9x)")
    print(f"batched / unbatched: {median['batched'] / median['unbatched']:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
