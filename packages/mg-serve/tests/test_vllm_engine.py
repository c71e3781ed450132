"""The vllm engine: the `vllm serve` argument list it builds from a folder, and real vLLM (the CPU build, in
the env mg-env builds) started, checked against transformers and stopped with its whole process group."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import TEXTS
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import mg_env
from mg_serve.vllm_engine import VLLMError, VLLMServer, free_port, group_members


def fake_built_env(profile: str, tmp_path: Path) -> mg_env.Env:
    """An Env value as mg-env describes a build (nothing installed): enough to build an argument list."""
    prof = mg_env.PROFILES[profile]
    record = mg_env.envs.BuildRecord(
        profile=prof.name,
        version=prof.default_version,
        python="3.11.0",
        platform="linux-x86_64-py311",
        lock="none.txt",
        lock_sha256="0",
        built_at=0.0,
        build_seconds=0.0,
        uv="0",
        sources={},
        mg_env="0",
    )
    return mg_env.Env(
        name=f"{prof.name}-{prof.default_version}", path=tmp_path / "env", record=record, profile=prof
    )


def flag(words: list[str], name: str) -> str | None:
    """The value of `name` in an argument list (None when absent); each flag appears at most once."""
    assert words.count(name) <= 1, words
    return words[words.index(name) + 1] if name in words else None


# --- the argument list -----------------------------------------------------------------------------------


def test_an_fp32_rm_export_is_served_as_its_command_says_in_float32(rm_export, tmp_path):
    recorded = json.loads((rm_export / "mg_export.json").read_text())["serve"]["vllm>=0.33"]["command"]
    assert recorded.endswith("--dtype float32")  # the export states its saved dtype (vLLM's auto is float16)
    server = VLLMServer(
        rm_export, port=8123, served_model_name="rm", api_key="k", env=fake_built_env("vllm-cpu", tmp_path)
    )
    argv = server.argv()
    assert argv[:4] == [
        str(tmp_path / "env/bin/python"),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
    ]
    assert argv[4] == str(rm_export)
    assert flag(argv, "--runner") == "pooling"
    assert flag(argv, "--convert") == "classify"
    assert flag(argv, "--dtype") == "float32" and argv.count("--dtype") == 1
    assert (flag(argv, "--host"), flag(argv, "--port")) == ("127.0.0.1", "8123")
    assert flag(argv, "--served-model-name") == "rm"
    assert "--api-key" not in argv and server.variables()["VLLM_API_KEY"] == "k"  # not in `ps` output
    assert flag(argv, "--gpu-memory-utilization") == "0.15"
    assert server.variables()["VLLM_CPU_KVCACHE_SPACE"] == "1"


def test_a_moved_export_is_served_from_where_it_is_now(rm_export, tmp_path):
    moved = shutil.copytree(rm_export, tmp_path / "moved")
    argv = VLLMServer(moved, env=fake_built_env("vllm-cpu", tmp_path)).argv()
    assert str(rm_export) not in argv  # the path the command recorded is not served
    assert argv[argv.index("--model") + 1] == str(moved)


def test_a_plain_folder_gets_vllms_auto_runner_and_its_saved_dtype(tiny_decoder_dir, tmp_path):
    argv = VLLMServer(tiny_decoder_dir, env=fake_built_env("vllm-cpu", tmp_path)).argv()
    assert "--runner" not in argv and "--convert" not in argv
    assert flag(argv, "--dtype") == "float32"
    assert "--served-model-name" not in argv and "--api-key" not in argv


def test_the_callers_dtype_and_flags_replace_the_chosen_ones(rm_export, tmp_path):
    env = fake_built_env("vllm-cpu", tmp_path)
    assert flag(VLLMServer(rm_export, dtype="auto", env=env).argv(), "--dtype") == "auto"
    args = ("--dtype", "bfloat16", "--gpu-memory-utilization=0.3", "--max-model-len", "64")
    argv = VLLMServer(rm_export, args=args, env=env).argv()
    assert flag(argv, "--dtype") == "bfloat16"
    assert "--gpu-memory-utilization" not in argv and "--gpu-memory-utilization=0.3" in argv
    assert flag(argv, "--max-model-len") == "64"


def test_cpu_memory_settings_only_on_the_cpu_build_and_a_users_kv_cache_wins(
    rm_export, tmp_path, monkeypatch
):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    cuda = VLLMServer(rm_export, env=fake_built_env("vllm", tmp_path))
    assert "--gpu-memory-utilization" not in cuda.argv()
    assert "VLLM_CPU_KVCACHE_SPACE" not in cuda.variables()
    mine = VLLMServer(
        rm_export, environ={"VLLM_CPU_KVCACHE_SPACE": "8"}, env=fake_built_env("vllm-cpu", tmp_path)
    )
    assert mine.variables()["VLLM_CPU_KVCACHE_SPACE"] == "8"


def test_an_export_vllm_does_not_serve_is_refused_with_the_exports_note(rm_export, tmp_path):
    folder = Path(shutil.copytree(rm_export, tmp_path / "copy"))
    info = json.loads((folder / "mg_export.json").read_text())
    info["serve"]["vllm>=0.33"] = {"command": None, "note": "Foo is not registered"}
    (folder / "mg_export.json").write_text(json.dumps(info))
    with pytest.raises(
        VLLMError, match=r"copy/mg_export.json: vLLM does not serve this export: Foo is not regis"
    ):
        VLLMServer(folder, env=fake_built_env("vllm-cpu", tmp_path)).argv()


def test_a_missing_folder_and_a_taken_port_are_one_line_errors(rm_export, tmp_path):
    env = fake_built_env("vllm-cpu", tmp_path)
    with pytest.raises(VLLMError, match="nowhere: no such model folder"):
        VLLMServer(tmp_path / "nowhere", env=env).argv()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(VLLMError, match=f"--port {port}: cannot listen on 127.0.0.1:{port}"):
            VLLMServer(rm_export, port=port, env=env).start()


# --- real vLLM ----------------------------------------------------------------------------------------------
# A vLLM start costs a minute or more on a 2-core machine, so this file starts a full server once: one
# `mg-serve --engine vllm` on the rm export that the last section's tests share. That the two engines give
# the same answers on models trained by mg-train is proven in tests/test_train_then_serve.py. The other
# tests here stop vLLM within seconds of starting it. The sections run in this order so that at most one
# vLLM runs at a time (each takes ~1 GiB).


def post(url: str, path: str, body: dict, key: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def transformers_scores(folder: Path, texts: list[str]) -> list[float]:
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item() for text in texts]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def vllm_processes() -> list[int]:
    """vLLM's API servers running now (and their forked children)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if "vllm.entrypoints.openai.api_server" in cmdline(pid)]


def vllm_groups(port: int) -> set[int]:
    """The process groups of the vLLM processes serving `port`."""
    groups = set()
    for pid in vllm_processes():
        if f"--port {port}" in cmdline(pid):
            with suppress(ProcessLookupError):  # it ended between the listing and now
                groups.add(os.getpgid(pid))
    return groups


def mg_serve_vllm(model_dir: Path, port: int, *options: str, **popen) -> subprocess.Popen:
    """The real `mg-serve MODEL --engine vllm` command, started in a subprocess."""
    command = [sys.executable, "-m", "mg_serve", str(model_dir), "--engine", "vllm", "--port", str(port)]
    return subprocess.Popen([*command, *options], text=True, **popen)


# --- vLLM started and stopped within seconds --------------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.slow
def test_a_vllm_that_exits_at_start_is_an_error_with_its_log_tail(rm_export):
    server = VLLMServer(rm_export, args=("--max-model-len", "not-a-number"))
    with pytest.raises(VLLMError) as caught:
        server.start()
    assert caught.value.summary == f"vLLM exited with code 2 while starting {rm_export}"
    assert "--max-model-len" in caught.value.tail and "not-a-number" in caught.value.tail
    assert "last lines of vLLM's log" in str(caught.value)


@pytest.mark.vllm
@pytest.mark.slow
def test_a_start_past_its_timeout_is_an_error_and_leaves_no_process(rm_export):
    server = VLLMServer(rm_export, startup_timeout=3)
    with pytest.raises(VLLMError, match=r"vLLM did not answer http://127.0.0.1:\d+/health within 3s"):
        server.start()
    assert server.pid is None  # start() stopped what it started
    assert not [p for p in vllm_processes() if f"--port {server.port}" in cmdline(p)]


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_ends_when_the_process_that_started_it_is_killed(rm_export):
    port = free_port()
    code = "import sys; from mg_serve.vllm_engine import VLLMServer; VLLMServer(sys.argv[1], port=int(sys.argv[2])).start()"
    starter = subprocess.Popen([sys.executable, "-c", code, str(rm_export), str(port)])
    try:
        deadline = time.monotonic() + 120
        while not (served := [p for p in vllm_processes() if f"--port {port}" in cmdline(p)]):
            assert starter.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        starter.kill()  # no chance to stop vLLM itself
        starter.wait()
    deadline = time.monotonic() + 60
    while group_members(served[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert group_members(served[0]) == []


def read_lines(stream) -> queue.Queue:
    """The lines of `stream` as they come, read by a thread (None at its end), for reads with a timeout."""
    lines: queue.Queue = queue.Queue()

    def copy() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=copy, daemon=True).start()
    return lines


def next_line(lines: queue.Queue, seconds: float = 120) -> str:
    line = lines.get(timeout=seconds)
    assert line is not None, "mg-serve ended"
    return line


@pytest.mark.vllm
@pytest.mark.slow
def test_ctrl_c_while_vllm_starts_stops_its_process_group_and_mg_serve_exits_0(rm_export):
    # Ctrl-C (SIGINT) is checked here, on a vLLM still starting: a start is a minute that a second full
    # server would cost. SIGTERM on a serving vLLM is the last test of the file.
    port = free_port()
    proc = mg_serve_vllm(rm_export, port, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stderr = read_lines(proc.stderr)
        while not next_line(stderr).startswith("mg-serve: starting vLLM: "):
            pass
        next_line(stderr)  # vLLM's own first line: its process is running and mg-serve waits for /health
        groups = vllm_groups(port)
        assert len(groups) == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert [group_members(g) for g in groups] == [[]]
        assert proc.stdout.read() == ""  # it never said it was serving: the signal came during the start
        rest = []
        while (line := stderr.get(timeout=10)) is not None:
            rest.append(line)
        assert "mg-serve: stopped vLLM\n" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- one `mg-serve --engine vllm` on the rm export, shared by the tests below -------------------------------
# They run in file order; the last one stops the server, so a test that needs it goes above that one.


@dataclass
class ServedByCli:
    proc: subprocess.Popen
    port: int
    first_line: str  # what mg-serve printed on stdout once vLLM answered /health
    log: Path  # mg-serve's stderr: its own lines and vLLM's log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> ServedByCli:
        if self.proc.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            pytest.fail(f"mg-serve exited with code {self.proc.returncode}; its stderr ends with:\n{tail}")
        return self


@pytest.fixture(scope="module")
def rm_by_cli(rm_export, tmp_path_factory) -> Iterator[ServedByCli]:
    """`mg-serve RM --engine vllm --api-key secret --served-model-name rm`, serving once its first line is out."""
    port = free_port()
    log = tmp_path_factory.mktemp("mg-serve-vllm") / "stderr.log"
    with open(log, "w") as sink:  # a file, not a pipe: vLLM's log at INFO would fill a pipe nobody reads
        proc = mg_serve_vllm(
            rm_export,
            port,
            "--api-key",
            "secret",
            "--served-model-name",
            "rm",
            stdout=subprocess.PIPE,
            stderr=sink,
        )
    try:
        yield ServedByCli(proc, port, proc.stdout.readline(), log)  # readline: "" when mg-serve ended
    finally:
        if proc.poll() is None:
            proc.terminate()  # the command stops its vLLM
            proc.wait(timeout=60)
        proc.stdout.close()


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return None


def vllm_groups_started_by(pid: int) -> set[int]:
    """The process groups of the vLLM API servers process `pid` started."""
    groups = set()
    for child in vllm_processes():
        if parent_of(child) == pid:
            with suppress(ProcessLookupError):
                groups.add(os.getpgid(child))
    return groups


@pytest.mark.vllm
@pytest.mark.slow
def test_mg_serve_engine_vllm_with_a_key_puts_vllm_behind_its_proxy(rm_by_cli, rm_export):
    served = rm_by_cli.running()
    assert served.first_line == f"mg-serve: vLLM is serving {rm_export} as 'rm' at {served.url}\n"
    assert vllm_groups(served.port) == set()  # vLLM does not listen on the port asked for: the proxy does
    groups = vllm_groups_started_by(served.proc.pid)
    assert len(groups) == 1  # vLLM, started by mg-serve, in a process group of its own
    assert os.getpgid(served.proc.pid) not in groups
    assert len(group_members(groups.pop())) >= 2  # the API server and its engine-core process
    vllm_cmdline = cmdline(next(p for p in vllm_processes() if parent_of(p) == served.proc.pid))
    assert "--host 127.0.0.1" in vllm_cmdline and "--api-key" not in vllm_cmdline


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_serves_an_fp32_rm_in_float32_and_its_scores_match_transformers(rm_by_cli, rm_export):
    expected = transformers_scores(rm_export, TEXTS)
    assert max(abs(s) for s in expected) > 0.5  # scores large enough for float16 to round them off
    reply = post(rm_by_cli.running().url, "/classify", {"model": "rm", "input": TEXTS}, key="secret")
    served = [row["probs"][0] for row in sorted(reply["data"], key=lambda r: r["index"])]
    assert served == pytest.approx(expected, abs=1e-4)
    assert "dtype=torch.float32" in rm_by_cli.log.read_text()  # as vLLM ran it


@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_started_by_mg_serve_needs_its_api_key_on_every_route_but_health(rm_by_cli):
    # vLLM's own --api-key would leave /classify, /pooling, /tokenize and /metrics open.
    url = rm_by_cli.running().url
    for path, body in [
        ("/v1/embeddings", {"model": "rm", "input": "hi"}),
        ("/classify", {"model": "rm", "input": "hi"}),
        ("/pooling", {"model": "rm", "input": "hi"}),
        ("/tokenize", {"model": "rm", "prompt": "hi"}),
    ]:
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(url, path, body)
        assert refused.value.code == 401
        assert json.loads(refused.value.read())["error"]["code"] == 401
    for path in ("/metrics", "/v1/models"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + path, timeout=30)
        assert refused.value.code == 401
    with urllib.request.urlopen(url + "/health", timeout=30) as response:
        assert response.status == 200
    models = urllib.request.Request(url + "/v1/models", headers={"Authorization": "Bearer secret"})
    with urllib.request.urlopen(models, timeout=30) as response:
        assert [m["id"] for m in json.loads(response.read())["data"]] == ["rm"]
    assert post(url, "/tokenize", {"model": "rm", "prompt": "hi"}, key="secret")["count"] >= 1


@pytest.mark.vllm
@pytest.mark.slow
def test_sigterm_stops_mg_serve_with_exit_0_and_vllms_whole_process_group(rm_by_cli):
    # The last test on the shared server (it stops it). Ctrl-C is checked on a vLLM still starting, above.
    served = rm_by_cli.running()
    groups = vllm_groups_started_by(served.proc.pid)
    assert len(groups) == 1
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=60) == 0
    assert [group_members(g) for g in groups] == [[]]
    assert "mg-serve: stopped vLLM\n" in served.log.read_text()
