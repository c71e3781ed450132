"""`mg-train CONFIG.yaml` for the preference and RL methods: a LLaMA-Factory-style dpo YAML (stage, pref_loss
simpo, pref_beta, cutoff_len, LoRA), and grpo with a reward file named relative to the current directory."""

import json

import pytest
from conftest import mg_train, series, write_config
from transformers import AutoModelForCausalLM

from mg_testing.datasets import pair_rows, write_jsonl

REWARD = """
def has_answer(completions, answer, **kwargs):
    return [1.0 if a in c[-1]["content"] else 0.0 for c, a in zip(completions, answer)]
"""


@pytest.mark.slow  # ~25 s here: two processes start and load torch, TRL and the model
def test_llamafactory_dpo_yaml_with_simpo_and_lora(tmp_path, tiny_decoder_dir):
    config = write_config(
        tmp_path / "dpo.yaml",
        stage="dpo",
        model_name_or_path=str(tiny_decoder_dir),
        dataset=str(write_jsonl(tmp_path / "pairs.jsonl", pair_rows())),
        output_dir=str(tmp_path / "run"),
        finetuning_type="lora",
        lora_target="all",
        pref_loss="simpo",
        pref_beta=2.0,
        simpo_gamma=0.5,
        cutoff_len=64,
        per_device_train_batch_size=4,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-3,
        save_strategy="no",
    )
    proc = mg_train(config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(series(tmp_path / "run", "train", "rewards/margins")) == 2
    export = json.loads((tmp_path / "run" / "model" / "mg_export.json").read_text(encoding="utf-8"))
    assert export["task"] == "dpo" and (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
    AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")


@pytest.mark.slow  # ~30 s here: two runs of the CLI
def test_grpo_reward_file_relative_to_the_current_directory(tmp_path, tiny_decoder_dir):
    (tmp_path / "rewards.py").write_text(REWARD, encoding="utf-8")
    rows = [{"prompt": [{"role": "user", "content": f"{i}+{i}?"}], "answer": str(2 * i)} for i in range(4)]
    common = {
        "task": "grpo",
        "model_name_or_path": str(tiny_decoder_dir),
        "train_file": "train.jsonl",
        "output_dir": "run",
        "per_device_train_batch_size": 4,
        "num_generations": 2,
        "max_completion_length": 4,
        "max_steps": 1,
        "logging_steps": 1,
        "save_strategy": "no",
    }
    write_jsonl(tmp_path / "train.jsonl", rows)
    bad = mg_train(
        write_config(tmp_path / "bad.yaml", reward_funcs=["rewards.py:missing"], **common), cwd=tmp_path
    )
    assert bad.returncode == 2
    assert (
        bad.stderr.strip().splitlines()[-1]
        == "error: reward_funcs: 'rewards.py:missing': rewards.py has no 'missing'"
    )
    good = mg_train(
        write_config(tmp_path / "good.yaml", reward_funcs=["rewards.py:has_answer"], **common), cwd=tmp_path
    )
    assert good.returncode == 0, good.stderr[-3000:]
    assert series(tmp_path / "run", "train", "rewards/has_answer/mean")


@pytest.mark.slow  # ~40 s here: three runs of the CLI
def test_kto_and_grpo_with_a_reward_model_trained_by_mg_train(tmp_path, tiny_decoder_dir):
    """The whole RLHF loop on the CLI: `rm` trains a reward model, grpo uses its export as the reward;
    kto trains on answers marked desirable or not (LLaMA-Factory's kto_tag)."""
    rm = write_config(
        tmp_path / "rm.yaml",
        task="rm",
        model_name_or_path=str(tiny_decoder_dir),
        train_file=str(write_jsonl(tmp_path / "pairs.jsonl", pair_rows())),
        output_dir=str(tmp_path / "rm"),
        max_steps=2,
        per_device_train_batch_size=4,
        save_strategy="no",
    )
    proc = mg_train(rm)
    assert proc.returncode == 0, proc.stderr[-3000:]
    prompts = [
        {"prompt": [{"role": "user", "content": p}]} for p in ("你好", "Where is my order?", "谢谢", "Hi")
    ]
    grpo = write_config(
        tmp_path / "grpo.yaml",
        task="grpo",
        model_name_or_path=str(tiny_decoder_dir),
        train_file=str(write_jsonl(tmp_path / "prompts.jsonl", prompts)),
        output_dir=str(tmp_path / "grpo"),
        reward_funcs=[str(tmp_path / "rm" / "model")],
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=4,
        max_steps=2,
        logging_steps=1,
        save_strategy="no",
    )
    proc = mg_train(grpo)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rewards = series(tmp_path / "grpo", "train", "reward")
    assert len(rewards) == 2 and all(r == r for r in rewards)  # logged and finite (not NaN)

    kto_rows = [
        {"instruction": r["prompt"], "output": answer, "kto_tag": tag}
        for r in pair_rows()
        for answer, tag in ((r["chosen"], True), (r["rejected"], False))
    ]
    kto = write_config(
        tmp_path / "kto.yaml",
        stage="kto",
        model_name_or_path=str(tiny_decoder_dir),
        train_file=str(write_jsonl(tmp_path / "kto.jsonl", kto_rows)),
        output_dir=str(tmp_path / "kto"),
        per_device_train_batch_size=4,
        max_steps=2,
        logging_steps=1,
        save_strategy="no",
    )
    proc = mg_train(kto)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(series(tmp_path / "kto", "train", "loss")) == 2
    assert (
        json.loads((tmp_path / "kto" / "model" / "mg_export.json").read_text(encoding="utf-8"))["task"]
        == "kto"
    )
