"""`mg-train CONFIG --backend llamafactory` on the real LLaMA-Factory 0.9.5 (mg-env's env, CPU), tiny decoder:
2-step LoRA SFT and DPO from an mg-train config and from a native LLaMA-Factory YAML, the first-step loss against
mg-train's own run of the same job, Ctrl-C, and LLaMA-Factory's own error on failure.

First-step losses are compared with a reference computed here from the base model (LoRA starts as a no-op, so
step 1's loss is the base model's): the mean negative log-likelihood over the trained tokens. Both backends
tokenize the conversations identically (the tiny decoder's ChatML; LLaMA-Factory's qwen3_nothink template and
its parse of the tokenizer's own template render the same text). They differ in one trained token per reply:
LLaMA-Factory's assistant slot is "{content}<|im_end|>\n", so it also trains the "\n" after <|im_end|>, which
mg-train's mask (the chat template's generation block) ends before. Each run must equal its own reference to
1e-4 (float32 forwards in two torch/transformers builds differ by ~1e-6), which a different tokenization or any
other masking difference (a prompt token trained, a token cut) would break by far more on this model, whose
token losses range over ~1 nat; the two runs then differ by exactly the newline's share.

The env is built on first use from its committed lock (PyPI: `network`) in $MG_ENV_TEST_HOME (default
~/.cache/mg-env-tests/home, shared with mg-env's tests) and reused.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.network]

SFT_ROWS = [
    {"prompt": "What is two plus two?", "response": "Four."},
    {"prompt": "Name a colour.", "response": "Blue is a colour."},
    {"prompt": "Say hello.", "response": "Hello there!"},
    {"prompt": "Count to three.", "response": "One, two, three."},
]
PAIRS = [
    {"prompt": "What is two plus two?", "chosen": "Four.", "rejected": "Five, I think."},
    {"prompt": "Name a colour.", "chosen": "Blue is a colour.", "rejected": "A chair."},
    {"prompt": "Say hello.", "chosen": "Hello there!", "rejected": "Goodbye."},
    {"prompt": "Count to three.", "chosen": "One, two, three.", "rejected": "Three, one."},
]
# Two steps, every row in one batch (the first step sees them all, whatever order a sampler picks).
STEPS = {"max_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1, "save_strategy": "no"}
TOLERANCE = 1e-4


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env_home():
    """MG_ENV_HOME for the runs (the CLI builds or reuses LLaMA-Factory's env there)."""
    home = os.environ.get("MG_ENV_TEST_HOME") or str(Path.home() / ".cache" / "mg-env-tests" / "home")
    Path(home).mkdir(parents=True, exist_ok=True)
    return home


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_decoder_dir):
    """A folder laid out as a LLaMA-Factory user's: data/dataset_info.json (sharegpt chats, pairs as in its
    dpo_en_demo), and mg-train's own files of the same rows."""
    root = tmp_path_factory.mktemp("lf")
    data = root / "data"
    data.mkdir()
    jsonl(root / "sft.jsonl", SFT_ROWS)
    jsonl(root / "pairs.jsonl", PAIRS)
    jsonl(data / "chats.jsonl", [sharegpt_chat(r) for r in SFT_ROWS])
    jsonl(data / "pairs.jsonl", [sharegpt_pair(r) for r in PAIRS])
    info = {
        "chats": {"file_name": "chats.jsonl", "formatting": "sharegpt"},
        "pairs": {
            "file_name": "pairs.jsonl",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
    }
    (data / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def sft_runs(workdir, env_home, tiny_decoder_dir):
    """One mg-train config, trained by mg-train and on LLaMA-Factory."""
    config = {
        "task": "sft",
        "model_name_or_path": str(tiny_decoder_dir),
        "train_file": "sft.jsonl",
        "finetuning_type": "lora",
        "max_length": 128,
        "learning_rate": 1e-3,  # big enough that the adapter visibly moves the weights in two steps
        **STEPS,
    }
    native = mg_train(
        workdir, write_yaml(workdir / "sft_native.yaml", {**config, "output_dir": "sft_native"}), env_home
    )
    lf = mg_train(
        workdir,
        write_yaml(workdir / "sft_lf.yaml", {**config, "output_dir": "sft_lf"}),
        env_home,
        "--backend",
        "llamafactory",
    )
    assert native.returncode == 0, native.stderr[-3000:]
    assert lf.returncode == 0, lf.stderr[-3000:]
    return workdir / "sft_native", workdir / "sft_lf", lf


@pytest.fixture(scope="module")
def dpo_run(workdir, env_home, tiny_decoder_dir):
    config = {
        "task": "dpo",
        "model_name_or_path": str(tiny_decoder_dir),
        "train_file": "pairs.jsonl",
        "finetuning_type": "lora",
        "max_length": 128,
        "output_dir": "dpo_lf",
        **STEPS,
    }
    done = mg_train(
        workdir, write_yaml(workdir / "dpo_lf.yaml", config), env_home, "--backend", "llamafactory"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "dpo_lf"


# --- tests -------------------------------------------------------------------------------------------------


def test_sft_first_step_loss_matches_mg_train(sft_runs, tiny_decoder_dir):
    native_dir, lf_dir, _ = sft_runs
    chats = [[user(r["prompt"]), assistant(r["response"])] for r in SFT_ROWS]
    ours, theirs = reference_sft_losses(tiny_decoder_dir, chats)
    native_loss, lf_loss = logged(native_dir, "loss")[1], logged(lf_dir, "loss")[1]
    assert abs(native_loss - ours) < TOLERANCE
    assert abs(lf_loss - theirs) < TOLERANCE
    print(
        f"first-step loss: mg-train {native_loss:.6f} (reference {ours:.6f}), LLaMA-Factory {lf_loss:.6f} "
        f"(reference {theirs:.6f})"
    )


def test_sft_run_folder_reads_and_serves_like_a_native_one(sft_runs, tmp_path):
    from transformers import AutoModelForCausalLM

    from mg_eval.report import write_report

    native_dir, lf_dir, done = sft_runs
    assert sorted(logged(lf_dir, "loss")) == [1, 2]
    config = json.loads((lf_dir / "config.json").read_text(encoding="utf-8"))
    assert (config["backend"], config["llamafactory_version"]) == ("llamafactory", "0.9.5")
    html = write_report([native_dir, lf_dir], tmp_path / "report.html").read_text(encoding="utf-8")
    assert "sft_native" in html and "sft_lf" in html
    export = json.loads((lf_dir / "model" / "mg_export.json").read_text(encoding="utf-8"))
    assert export["task"] == "sft" and export["training"]["backend"] == "llamafactory 0.9.5"
    assert export["serve"]["vllm>=0.33"]["command"].startswith(f"vllm serve {lf_dir / 'model'}")
    assert f"serve it: vllm serve {lf_dir / 'model'}" in done.stderr
    # the merged folder is the base model with LLaMA-Factory's trained adapter folded in
    merged = AutoModelForCausalLM.from_pretrained(lf_dir / "model")
    with_adapter = peft_model(export["lora"]["base_model"], lf_dir / "llamafactory")
    base = AutoModelForCausalLM.from_pretrained(export["lora"]["base_model"])
    ids = torch.tensor([[1, 748, 293, 201, 53, 386, 933]])
    with torch.no_grad():
        got, want, before = (m(ids).logits for m in (merged, with_adapter, base))
    assert torch.allclose(got, want, atol=1e-5)
    assert (got - before).abs().max() > 1e-3


def test_native_sft_yaml_runs_with_the_resume_trap_removed(workdir, env_home, tiny_decoder_dir):
    # `resume_from_checkpoint: None` is the string "None" in YAML: LLaMA-Factory alone fails on 'None/trainer_state.json'
    text = yaml.safe_dump(
        {
            "model_name_or_path": str(tiny_decoder_dir),
            "stage": "sft",
            "do_train": True,
            "finetuning_type": "lora",
            "lora_target": "all",
            "dataset": "chats",
            "template": "qwen3_nothink",
            "cutoff_len": 128,
            "output_dir": "sft_native_yaml",
            "report_to": "none",
            "bf16": False,
            **STEPS,
        },
        sort_keys=False,
    )
    (workdir / "lf_sft.yaml").write_text(text + "resume_from_checkpoint: None\n", encoding="utf-8")
    done = mg_train(workdir, workdir / "lf_sft.yaml", env_home, "--backend", "llamafactory")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resume_from_checkpoint: 'None' means start fresh: dropped" in done.stderr
    run = workdir / "sft_native_yaml"
    ran = yaml.safe_load((run / "llamafactory" / "train.yaml").read_text(encoding="utf-8"))
    assert "resume_from_checkpoint" not in ran and ran["lora_target"] == "all"
    # its qwen3_nothink template renders the tiny decoder's ChatML as the mg-train config's run did
    chats = [[user(r["prompt"]), assistant(r["response"])] for r in SFT_ROWS]
    _, theirs = reference_sft_losses(tiny_decoder_dir, chats)
    assert abs(logged(run, "loss")[1] - theirs) < TOLERANCE and sorted(logged(run, "loss")) == [1, 2]
    adapter = json.loads((run / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= set(
        adapter["target_modules"]
    )
    assert (run / "model" / "mg_export.json").is_file()


def test_dpo_from_an_mg_train_config(dpo_run, tiny_decoder_dir):
    """Step 1: policy == reference (LoRA starts as a no-op), so the loss is ln 2 and the log-probabilities are the
    base model's over each answer (with the newline LLaMA-Factory trains after <|im_end|>)."""
    first = logged_step(dpo_run, 1)
    assert abs(first["loss"] - math.log(2)) < 1e-6
    chosen, rejected = reference_answer_logps(tiny_decoder_dir, PAIRS)
    assert abs(first["logps/chosen"] - chosen) < 1e-3
    assert abs(first["logps/rejected"] - rejected) < 1e-3
    export = json.loads((dpo_run / "model" / "mg_export.json").read_text(encoding="utf-8"))
    assert export["task"] == "dpo" and (dpo_run / "adapter").is_dir()


def test_native_dpo_yaml_reads_the_same_pairs_the_same_way(workdir, env_home, dpo_run, tiny_decoder_dir):
    config = {
        "model_name_or_path": str(tiny_decoder_dir),
        "stage": "dpo",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "q_proj,v_proj",
        "pref_beta": 0.1,
        "pref_loss": "sigmoid",
        "dataset": "pairs",
        "template": "qwen3_nothink",
        "cutoff_len": 128,
        "output_dir": "dpo_native_yaml",
        "report_to": "none",
        "bf16": False,
        **STEPS,
    }
    done = mg_train(
        workdir, write_yaml(workdir / "lf_dpo.yaml", config), env_home, "--backend", "llamafactory"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    native_yaml, from_mg = logged_step(workdir / "dpo_native_yaml", 1), logged_step(dpo_run, 1)
    assert abs(native_yaml["loss"] - math.log(2)) < 1e-6
    for name in ("logps/chosen", "logps/rejected"):
        assert abs(native_yaml[name] - from_mg[name]) < 1e-3
    assert (workdir / "dpo_native_yaml" / "model" / "mg_export.json").is_file()


def test_ctrl_c_stops_every_process_of_llamafactory(workdir, env_home, tiny_decoder_dir):
    config = {
        "task": "sft",
        "model_name_or_path": str(tiny_decoder_dir),
        "train_file": "sft.jsonl",
        "finetuning_type": "lora",
        "output_dir": "interrupted",
        "max_steps": 100000,
    }
    cli = [sys.executable, "-m", "mg_cli.train", str(write_yaml(workdir / "long.yaml", config))]
    # a terminal's Ctrl-C goes to mg-train's process group: start it in one of its own and signal that
    child = subprocess.Popen(
        [*cli, "--backend", "llamafactory"],
        cwd=workdir,
        env={**os.environ, "MG_ENV_HOME": env_home},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seen = b""
    while b"llamafactory-cli train" not in seen:
        chunk = os.read(child.stdout.fileno(), 65536)
        assert chunk, seen.decode(errors="replace")[-3000:]
        seen += chunk
    time.sleep(3)  # LLaMA-Factory is importing its libraries
    spawned = descendants(child.pid)
    assert spawned  # llamafactory-cli, in a process group of its own
    os.killpg(child.pid, signal.SIGINT)
    rest = child.communicate(timeout=120)[0]
    out = (seen + rest).decode(errors="replace")
    assert child.returncode == 130, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert last.startswith("SIGINT: LLaMA-Factory stopped; no checkpoint was saved; resume with: mg-train ")
    assert "Traceback" not in out  # neither ours nor its KeyboardInterrupt
    time.sleep(1)
    assert [pid for pid in spawned if alive(pid)] == []


def test_a_failure_shows_llamafactorys_own_error(workdir, env_home, tiny_decoder_dir):
    config = {
        "model_name_or_path": str(tiny_decoder_dir),
        "stage": "sft",
        "do_train": True,
        "dataset": "chats",
        "template": "qwen3_nothink",
        "output_dir": "failed",
        "lora_rnak": 8,  # misspelt: LLaMA-Factory's argument parser refuses it
    }
    done = mg_train(workdir, write_yaml(workdir / "bad.yaml", config), env_home, "--backend", "llamafactory")
    assert done.returncode == 1
    log = workdir / "failed" / "llamafactory" / "output.log"
    assert done.stderr.strip().splitlines()[-1] == (
        "error: LLaMA-Factory failed: ValueError: Some keys are not used by the HfArgumentParser: ['lora_rnak'] "
        f"(its output: {log})"
    )
    # the only tracebacks shown are LLaMA-Factory's own (streamed as it printed them), none of ours
    assert done.stderr.count("Traceback") == log.read_text(encoding="utf-8").count("Traceback") >= 1


# --- helpers -----------------------------------------------------------------------------------------------


def mg_train(cwd: Path, config: Path, env_home: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mg_cli.train", str(config), *flags],
        cwd=cwd,
        env={**os.environ, "MG_ENV_HOME": env_home},
        capture_output=True,
        text=True,
        timeout=900,
    )


def write_yaml(path: Path, mapping: dict) -> Path:
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def sharegpt_chat(row: dict) -> dict:
    return {
        "conversations": [
            {"from": "human", "value": row["prompt"]},
            {"from": "gpt", "value": row["response"]},
        ]
    }


def sharegpt_pair(row: dict) -> dict:
    return {
        "conversations": [{"from": "human", "value": row["prompt"]}],
        "chosen": {"from": "gpt", "value": row["chosen"]},
        "rejected": {"from": "gpt", "value": row["rejected"]},
    }


def logged(run_dir: Path, name: str, split: str = "train") -> dict[int, float]:
    records = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return {r["step"]: r["value"] for r in records if r["split"] == split and r["name"] == name}


def logged_step(run_dir: Path, step: int) -> dict[str, float]:
    records = [
        json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return {r["name"]: r["value"] for r in records if r["split"] == "train" and r["step"] == step}


@functools.cache
def base_model(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32
    ).eval()


def token_nlls(model_dir, chat: list[dict]) -> tuple[list[float], list[int], list[int]]:
    """The base model's NLL of each token after the first, the chat template's assistant mask, the ids."""
    tokenizer, model = base_model(model_dir)
    encoded = tokenizer.apply_chat_template(
        chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    nlls = [-logprobs[i - 1, ids[i]].item() for i in range(1, len(ids))]
    return nlls, mask, ids


def trained_positions(model_dir, mask: list[int], ids: list[int]) -> tuple[list[int], list[int]]:
    """(mg-train's trained positions, LLaMA-Factory's): the assistant span, and the span plus the "\\n" after
    its <|im_end|>."""
    newline = base_model(model_dir)[0].encode("\n")
    ours = [i for i in range(1, len(ids)) if mask[i]]
    after = [i for i in range(1, len(ids)) if mask[i - 1] and not mask[i]]
    assert after and all(ids[i] == newline[0] for i in after)
    return ours, sorted(ours + after)


def reference_sft_losses(model_dir, chats: list[list[dict]]) -> tuple[float, float]:
    """The step-1 loss of all chats in one batch: the mean NLL over every trained token (HF's loss with
    num_items_in_batch), for mg-train's mask and for LLaMA-Factory's."""
    sums, counts = [0.0, 0.0], [0, 0]
    for chat in chats:
        nlls, mask, ids = token_nlls(model_dir, chat)
        for k, positions in enumerate(trained_positions(model_dir, mask, ids)):
            sums[k] += sum(nlls[i - 1] for i in positions)
            counts[k] += len(positions)
    return sums[0] / counts[0], sums[1] / counts[1]


def reference_answer_logps(model_dir, pairs: list[dict]) -> tuple[float, float]:
    """LLaMA-Factory's logps/chosen and logps/rejected at step 1: the base model's summed log-probability of
    each answer (its trained tokens), averaged over the pairs."""
    totals = []
    for key in ("chosen", "rejected"):
        values = []
        for pair in pairs:
            nlls, mask, ids = token_nlls(model_dir, [user(pair["prompt"]), assistant(pair[key])])
            _, positions = trained_positions(model_dir, mask, ids)
            values.append(-sum(nlls[i - 1] for i in positions))
        totals.append(sum(values) / len(values))
    return totals[0], totals[1]


def peft_model(base_dir: str, adapter_dir: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).eval()


def descendants(pid: int) -> set[int]:
    """Every process started (directly or not) by `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, ppid in parents.items() if ppid == parent}
        found |= children
        todo.extend(children)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
