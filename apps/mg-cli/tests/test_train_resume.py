"""Resume, for real: `mg-train` killed with SIGKILL mid-training (after a checkpoint was saved), rerun with
`--resume`, finishes exactly as an uninterrupted run (same per-step losses, hence the same data order, and
the same weights); a null/"None" resume value starts fresh."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from conftest import mg_train, write_config
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from mg_testing.datasets import classify_rows, embed_rows, pair_rows, write_jsonl

REPO = Path(__file__).resolve().parents[3]


def losses_by_step(run_dir: Path) -> dict[int, float]:
    """The train loss of each step; a step logged twice (before a kill and again after resuming) keeps the
    later value."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["split"] == "train" and record["name"] == "loss":
            out[record["step"]] = record["value"]
    return out


def loss_records(run_dir: Path) -> int:
    text = (run_dir / "metrics.jsonl").read_text(encoding="utf-8")
    return sum('"name": "loss"' in line and '"split": "train"' in line for line in text.splitlines())


def complete_checkpoints(run_dir: Path) -> list[int]:
    return sorted(int(p.parent.name.split("-")[1]) for p in run_dir.glob("checkpoint-*/trainer_state.json"))


def kill_after_checkpoint(command: list[str], run_dir: Path, step: int, timeout: float = 240) -> None:
    """Start `command`, and as soon as checkpoint-`step` is complete SIGKILL it with every process it
    started (torchrun's workers run in their own sessions), as a crash or the OOM killer would."""
    log = run_dir.with_name(run_dir.name + ".log")
    with open(log, "w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + timeout
    marker = run_dir / f"checkpoint-{step}" / "trainer_state.json"
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before checkpoint-{step}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no checkpoint-{step} after {timeout} s")
        time.sleep(0.01)
    victims = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(victims, timeout=30)
    assert proc.returncode == -signal.SIGKILL and not alive
    assert not (run_dir / "model").exists()  # killed before the end


def fake_save_interrupted(run_dir: Path, save_steps: int) -> Path:
    """What a kill during a save leaves: checkpoint-N with the weights but without trainer_state.json (the
    Trainer writes it last). --resume must skip it for the newest complete checkpoint."""
    newest = complete_checkpoints(run_dir)[-1]
    partial = run_dir / f"checkpoint-{newest + save_steps}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    shutil.copy(run_dir / f"checkpoint-{newest}" / "model.safetensors", partial)
    return partial


def assert_same_weights(a: Path, b: Path, atol: float) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=atol, rtol=0, msg=key)


@pytest.mark.slow  # two trainings and a kill
def test_kill_9_then_resume_equals_uninterrupted(tmp_path, tiny_encoder_dir):
    # Dropout stays on: the checkpoint's RNG states must bring back the same masks, not only the data order.
    config = write_config(
        tmp_path / "config.yaml",
        task="classify",
        model_name_or_path=str(tiny_encoder_dir),
        train_file=str(write_jsonl(tmp_path / "train.jsonl", classify_rows(copies=2))),  # 48 rows
        output_dir=str(tmp_path / "straight"),
        num_train_epochs=10,  # 60 steps of 8
        per_device_train_batch_size=8,
        logging_steps=1,
        max_length=32,
        save_strategy="steps",
        save_steps=5,
        learning_rate=1e-3,
        seed=0,
    )
    proc = mg_train(config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    straight = losses_by_step(tmp_path / "straight")
    assert sorted(straight) == list(range(1, 61))

    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "mg_cli.train", str(config), "--output-dir", str(run_dir)]
    kill_after_checkpoint(command, run_dir, step=10)  # mid-epoch 2 (6 steps an epoch)
    before = losses_by_step(run_dir)
    assert 10 <= max(before) < 60
    partial = fake_save_interrupted(run_dir, save_steps=5)
    resume_from = complete_checkpoints(run_dir)[-1]
    records = loss_records(run_dir)

    proc = mg_train(config, "--output-dir", run_dir, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resume: {partial} is incomplete" in proc.stderr
    # It resumed (a fresh start would log all 60 steps again), from the newest complete checkpoint.
    assert loss_records(run_dir) - records == 60 - resume_from
    resumed = losses_by_step(run_dir)
    assert sorted(resumed) == list(range(1, 61))
    # Same data order and the same updates: every step's loss, re-done steps included, as in the straight run.
    assert [resumed[s] for s in range(1, 61)] == pytest.approx([straight[s] for s in range(1, 61)], abs=1e-6)
    assert {s: before[s] for s in before} == pytest.approx({s: straight[s] for s in before}, abs=1e-6)
    assert_same_weights(run_dir / "model", tmp_path / "straight" / "model", atol=1e-6)


@pytest.mark.slow  # over 20 s here: trains
def test_resume_none_starts_fresh_in_an_existing_output_dir(tmp_path, tiny_encoder_dir):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("an output_dir that exists and has no checkpoint\n")
    data = write_jsonl(tmp_path / "train.jsonl", classify_rows(copies=1))
    # Exactly as a LLaMA-Factory YAML has it: the string None (LLaMA-Factory then looks for None/trainer_state.json).
    config = tmp_path / "config.yaml"
    config.write_text(
        f"task: classify\nmodel_name_or_path: {tiny_encoder_dir}\ntrain_file: {data}\noutput_dir: {run_dir}\n"
        "max_steps: 3\nper_device_train_batch_size: 8\nlogging_steps: 1\nsave_strategy: 'no'\n"
        "resume_from_checkpoint: None\n",
        encoding="utf-8",
    )
    proc = mg_train(config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(losses_by_step(run_dir)) == [1, 2, 3]
    assert (run_dir / "model" / "config.json").is_file()
    # --resume (auto) where there is no checkpoint starts fresh too: three more steps from step 1.
    proc = mg_train(config, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert loss_records(run_dir) == 6


@pytest.mark.distributed
@pytest.mark.slow
def test_zero3_two_processes_killed_and_resumed(tmp_path, tiny_encoder_dir):
    """A whole 2-process ZeRO-3 job is killed; resuming restores its partitioned weights and optimizer
    state from the DeepSpeed checkpoint and it finishes as one uninterrupted process with the same global
    batch (dropout off and gather_negatives on make 2 x 4 and 1 x 8 the same computation)."""
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_encoder_dir, encoder)
    model_config = json.loads((encoder / "config.json").read_text(encoding="utf-8"))
    model_config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (encoder / "config.json").write_text(json.dumps(model_config), encoding="utf-8")
    ds_config = json.loads((REPO / "examples" / "launch" / "ds_zero3.json").read_text(encoding="utf-8"))
    ds_config["zero_optimization"]["stage3_param_persistence_threshold"] = 0  # partition even tiny weights
    (tmp_path / "zero3.json").write_text(json.dumps(ds_config), encoding="utf-8")
    config = write_config(
        tmp_path / "config.yaml",
        task="embed",
        model_name_or_path=str(encoder),
        train_file=str(write_jsonl(tmp_path / "train.jsonl", embed_rows())),  # 18 rows: 2 steps of 8
        output_dir=str(tmp_path / "one"),
        num_train_epochs=12,  # 24 steps
        per_device_train_batch_size=8,
        gather_negatives=True,
        logging_steps=1,
        max_length=32,
        save_strategy="steps",
        save_steps=4,
        learning_rate=1e-3,
        seed=0,
    )
    proc = mg_train(config, "--save-strategy", "no")
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = losses_by_step(tmp_path / "one")

    run_dir = tmp_path / "zero3"
    launch = ["--output-dir", str(run_dir), "--deepspeed", str(tmp_path / "zero3.json")]
    launch += ["--per-device-train-batch-size", "4", "--nproc-per-node", "2"]
    command = [sys.executable, "-m", "mg_cli.train", str(config), *launch]
    kill_after_checkpoint(command, run_dir, step=8)
    assert (run_dir / "checkpoint-8" / "global_step8").is_dir()  # DeepSpeed's partitioned states
    resume_from = complete_checkpoints(run_dir)[-1]
    records = loss_records(run_dir)

    proc = mg_train(config, *launch, "--resume", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert loss_records(run_dir) - records == 24 - resume_from
    resumed = losses_by_step(run_dir)
    assert [resumed[s] for s in range(1, 25)] == pytest.approx([one[s] for s in range(1, 25)], rel=1e-4)
    texts = ["我要退货", "How do I reset my password?", "where is my parcel"]
    got = SentenceTransformer(str(run_dir / "model"), device="cpu").encode(texts, convert_to_tensor=True)
    want = SentenceTransformer(str(tmp_path / "one" / "model"), device="cpu").encode(
        texts, convert_to_tensor=True
    )
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def generative_config(tmp_path: Path, task: str, model: Path) -> Path:
    """60 steps of 4 (sft: packed rows of chats; dpo: preference pairs), a checkpoint every 5 steps."""
    if task == "sft":
        rows = [
            {
                "messages": [
                    {"role": "user", "content": f"Where did order {i} go?"},
                    {"role": "assistant", "content": f"Order {i} is on its way to " + "the depot " * (i % 5)},
                ]
            }
            for i in range(40)
        ]
        extra = {"packing": True, "max_length": 64}
    else:
        rows, extra = pair_rows(), {"max_length": 64}
    return write_config(
        tmp_path / f"{task}.yaml",
        task=task,
        model_name_or_path=str(model),
        train_file=str(write_jsonl(tmp_path / "train.jsonl", rows)),
        output_dir=str(tmp_path / "straight"),
        max_steps=60,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="steps",
        save_steps=5,
        learning_rate=1e-3,
        seed=0,
        **extra,
    )


@pytest.mark.slow  # two trainings and a kill
@pytest.mark.parametrize("task", ["sft", "dpo"])
def test_generative_kill_9_then_resume_equals_uninterrupted(tmp_path, tiny_decoder_dir, task):
    config = generative_config(tmp_path, task, tiny_decoder_dir)
    proc = mg_train(config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    straight = losses_by_step(tmp_path / "straight")
    assert sorted(straight) == list(range(1, 61))

    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "mg_cli.train", str(config), "--output-dir", str(run_dir)]
    kill_after_checkpoint(command, run_dir, step=10)
    proc = mg_train(config, "--output-dir", run_dir, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = losses_by_step(run_dir)
    assert sorted(resumed) == list(range(1, 61))
    assert [resumed[s] for s in range(1, 61)] == pytest.approx([straight[s] for s in range(1, 61)], abs=1e-5)
    assert_same_weights(run_dir / "model", tmp_path / "straight" / "model", atol=1e-5)
