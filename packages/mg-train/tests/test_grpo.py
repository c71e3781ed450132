"""grpo on the tiny random decoder: rewards from a file (reading a data column), from an importable module, and
a reward model trained by mg-train's rm task; every wrong reward entry as one line naming it."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from mg_testing.datasets import pair_rows, write_jsonl
from mg_train.config import parse
from mg_train.errors import ConfigError
from mg_train.run import train

# The completions of a group differ only by sampling: a few tokens each keep a step to about a second here.
STEPS = {
    "max_steps": 2,
    "per_device_train_batch_size": 4,
    "num_generations": 2,
    "max_completion_length": 6,
    "logging_steps": 1,
    "save_strategy": "no",
    "learning_rate": 1e-3,
    "seed": 0,
}
REWARDS = '''
import json, os


def contains_answer(completions, answer, **kwargs):
    """1 when the completion holds the row's reference answer; writes the answers it was given beside itself."""
    with open(os.path.join(os.path.dirname(__file__), "seen.jsonl"), "a") as f:
        f.write(json.dumps(answer) + "\\n")
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if a in t else 0.0 for t, a in zip(texts, answer)]


def no_kwargs(prompts, completions):
    return [0.0] * len(completions)


NOT_A_FUNCTION = 3
'''


def rows() -> list[dict]:
    return [
        {"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "answer": str(2 * i)}
        for i in range(8)
    ]


def config(tmp_path, model_dir, rewards, **extra) -> dict:
    return {
        "task": "grpo",
        "model_name_or_path": str(model_dir),
        "train_file": str(write_jsonl(tmp_path / "train.jsonl", rows())),
        "output_dir": str(tmp_path / "run"),
        "reward_funcs": rewards,
        **STEPS,
        **extra,
    }


@pytest.fixture
def rewards_file(tmp_path):
    path = tmp_path / "rewards" / "rules.py"
    path.parent.mkdir()
    path.write_text(REWARDS, encoding="utf-8")
    return path


def logged(run_dir) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["split"] == "train":
            out.setdefault(record["name"], []).append(record["value"])
    return out


def test_grpo_with_a_file_reward_reading_a_column_and_a_module_reward(
    tmp_path, tiny_decoder_dir, rewards_file, monkeypatch
):
    # A relative path is read from the current directory (like train_file)
    monkeypatch.chdir(tmp_path)
    entries = ["rewards/rules.py:contains_answer", "trl.rewards:think_format_reward"]
    logs: list[str] = []
    summary = train(parse(config(tmp_path, tiny_decoder_dir, entries)), log=logs.append)
    assert summary["global_step"] == 2
    seen = [json.loads(line) for line in (rewards_file.parent / "seen.jsonl").read_text().splitlines()]
    # the `answer` column reached the function: one value per completion (num_generations per prompt)
    assert seen and all(len(batch) == 4 and set(batch) <= {str(2 * i) for i in range(8)} for batch in seen)
    metrics = logged(tmp_path / "run")
    assert len(metrics["loss"]) == 2
    assert "rewards/contains_answer/mean" in metrics and "rewards/think_format_reward/mean" in metrics
    preview = next(line for line in logs if line.startswith("data preview"))
    assert "scored by contains_answer, think_format_reward; columns passed to the rewards: answer" in preview
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model") is not None


def test_grpo_with_a_reward_model_trained_by_the_rm_task(tmp_path, tiny_decoder_dir):
    rm_rows = [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in pair_rows()
    ]
    rm_job = parse(
        {
            "task": "rm",
            "model_name_or_path": str(tiny_decoder_dir),
            "train_file": str(write_jsonl(tmp_path / "rm.jsonl", rm_rows)),
            "output_dir": str(tmp_path / "rm"),
            "max_steps": 2,
            "per_device_train_batch_size": 4,
            "save_strategy": "no",
        }
    )
    train(rm_job, log=lambda _: None)
    reward_model = tmp_path / "rm" / "model"
    train(parse(config(tmp_path, tiny_decoder_dir, [str(reward_model)])), log=lambda _: None)
    metrics = logged(tmp_path / "run")
    [name] = [k for k in metrics if k.startswith("rewards/") and k.endswith("/mean")]
    assert len(metrics[name]) == 2 and all(v == v for v in metrics[name])  # scored: finite rewards
    assert max(metrics["reward_std"]) > 0  # the reward model tells the completions of a group apart


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("missing.py:fn", "'missing.py:fn': no such file"),
        ("{rules}:nothing", "has no 'nothing'"),
        ("{rules}:NOT_A_FUNCTION", "NOT_A_FUNCTION is a int, not a function"),
        ("{rules}:no_kwargs", "does not take completion_ids, trainer_state, log_extra, log_metric, answer"),
        ("no_such_package.rewards:fn", "no module named 'no_such_package'"),
        ("{model}", "is a folder but no mg-train export"),
        ("just_a_name", "is not a reward: expected path/to/rewards.py:function"),
    ],
)
def test_a_bad_reward_entry_is_one_line_naming_it(tmp_path, tiny_decoder_dir, rewards_file, entry, says):
    entry = entry.format(rules=rewards_file, model=tiny_decoder_dir)
    with pytest.raises(ConfigError) as e:
        train(parse(config(tmp_path, tiny_decoder_dir, [entry])), log=lambda _: None)
    message = str(e.value)
    assert message.startswith("reward_funcs: ") and says in message and "\n" not in message, message
    assert not (tmp_path / "run" / "model").exists()


def test_reward_funcs_is_required(tmp_path, tiny_decoder_dir):
    with pytest.raises(ConfigError, match="reward_funcs is required for task grpo"):
        parse(config(tmp_path, tiny_decoder_dir, []))


def test_generation_defaults_fit_a_cpu(tmp_path, tiny_decoder_dir):
    mapping = config(tmp_path, tiny_decoder_dir, ["trl.rewards:think_format_reward"])
    del mapping["num_generations"], mapping["max_completion_length"]
    args = parse(mapping).train
    expected = (8, 512) if torch.cuda.is_available() else (4, 64)  # TRL's on a GPU
    assert (args.num_generations, args.max_completion_length, args.use_vllm) == (*expected, False)
    assert args.learning_rate == 1e-3 and args.beta == 0.0  # TRL's: no reference model
