"""dpo (TRL's DPO losses, SimPO and ORPO routed to their TRL trainers), kto, and ppo's refusal: the config (our
defaults, TRL's method defaults, LLaMA-Factory's names), then a few real steps on the tiny random decoder through
mg_train.run.train, the run log, and the export loaded by transformers."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from mg_testing.datasets import pair_rows, write_jsonl
from mg_train.config import parse
from mg_train.errors import ConfigError
from mg_train.run import train

STEPS = {
    "max_steps": 3,
    "per_device_train_batch_size": 4,
    "logging_steps": 1,
    "save_strategy": "no",
    "max_length": 64,
    "learning_rate": 1e-3,
    "seed": 0,
}


def config(tmp_path, model_dir, task: str, rows: list[dict], **extra) -> dict:
    return {
        "task": task,
        "model_name_or_path": str(model_dir),
        "train_file": str(write_jsonl(tmp_path / "train.jsonl", rows)),
        "output_dir": str(tmp_path / "run"),
        **STEPS,
        **extra,
    }


def conversational(rows: list[dict]) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in rows
    ]


def kto_rows() -> list[dict]:
    return [
        {"prompt": r["prompt"], "completion": r["chosen"] if i % 2 else r["rejected"], "label": bool(i % 2)}
        for i, r in enumerate(pair_rows())
    ]


def logged(run_dir, name: str) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return [r["value"] for r in records if r["split"] == "train" and r["name"] == name]


def loads_as_causal_lm(model_dir) -> None:
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert type(model).__name__.endswith("ForCausalLM")
    assert all(torch.isfinite(p).all() for p in model.parameters())


# --- the config ---------------------------------------------------------------------------------------------


def test_dpo_config_keeps_our_defaults_and_trls_method_defaults(tmp_path, tiny_decoder_dir):
    mapping = config(tmp_path, tiny_decoder_dir, "dpo", pair_rows())
    del mapping["learning_rate"]
    args = parse(mapping).train
    assert args.learning_rate == 1e-6  # TRL's DPO default, not TrainingArguments' 5e-5
    assert args.report_to in ([], "none", ["none"])  # TaskConfig: the run log only, no HF reporter
    assert args.save_total_limit == 2
    assert (
        args.bf16 is False and args.gradient_checkpointing is False
    )  # CPU: GenerativeConfig's, not TRL's True
    assert args.loss_type == ["sigmoid"] and args.beta == 0.1
    assert args.remove_unused_columns is True  # TRL's DPO default survives TaskConfig's False


def test_llamafactory_names_map_to_trls(tmp_path, tiny_decoder_dir):
    mapping = config(tmp_path, tiny_decoder_dir, "dpo", pair_rows())
    del mapping["task"], mapping["max_length"]
    mapping |= {
        "stage": "dpo",
        "pref_beta": 0.3,
        "pref_loss": "ipo",
        "dpo_label_smoothing": 0.1,
        "cutoff_len": 32,
    }
    job = parse(mapping)
    assert (job.train.beta, job.train.loss_type, job.train.label_smoothing) == (0.3, ["ipo"], 0.1)
    assert job.model.max_length == 32
    kto = parse(
        config(tmp_path, tiny_decoder_dir, "kto", kto_rows())
        | {"kto_chosen_weight": 2.0, "kto_rejected_weight": 0.5}
    )
    assert (kto.train.desirable_weight, kto.train.undesirable_weight) == (2.0, 0.5)
    assert kto.train.train_sampling_strategy == "sequential"  # TRL's KTO default (its KL term needs it)
    assert kto.train.learning_rate == 1e-3


def test_pref_ftx_adds_trls_sft_loss(tmp_path, tiny_decoder_dir):
    job = parse(config(tmp_path, tiny_decoder_dir, "dpo", pair_rows(), pref_loss="hinge", pref_ftx=0.5))
    assert job.train.loss_type == ["hinge", "sft"] and job.train.loss_weights == [1.0, 0.5]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"loss_type": "dpo"}, "loss_type 'dpo' is not one of sigmoid, hinge, ipo"),
        ({"pref_loss": "kto_pair"}, "kto_pair is now its own task: task: kto"),
        ({"loss_type": ["simpo", "sft"]}, "simpo and orpo are whole methods"),
        ({"loss_type": "orpo", "pref_ftx": 0.1}, "orpo's loss already holds the SFT"),
        ({"loss_type": ["sigmoid", "ipo"], "loss_weights": [1.0]}, "loss_weights"),
    ],
)
def test_wrong_loss_settings_are_one_line(tmp_path, tiny_decoder_dir, extra, says):
    with pytest.raises(ConfigError) as e:
        parse(config(tmp_path, tiny_decoder_dir, "dpo", pair_rows(), **extra))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_ppo_is_refused_pointing_to_grpo(tmp_path, tiny_decoder_dir):
    with pytest.raises(ConfigError) as e:
        parse(config(tmp_path, tiny_decoder_dir, "ppo", pair_rows()))
    assert "no PPO trainer" in str(e.value) and "task: grpo" in str(e.value)


# --- training -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "metric", "rows"),
    [
        ("sigmoid", "rewards/margins", pair_rows),
        ("ipo", "rewards/margins", lambda: conversational(pair_rows())),  # rendered by the chat template
        ("simpo", "rewards/margins", pair_rows),  # TRL's CPOTrainer
        ("orpo", "log_odds_ratio", lambda: conversational(pair_rows())),  # TRL's ORPOTrainer
    ],
)
def test_dpo_trains_exports_and_logs(tmp_path, tiny_decoder_dir, loss, metric, rows):
    logs: list[str] = []
    summary = train(parse(config(tmp_path, tiny_decoder_dir, "dpo", rows(), pref_loss=loss)), log=logs.append)
    run_dir = tmp_path / "run"
    assert summary["global_step"] == 3
    losses = logged(run_dir, "loss")
    assert len(losses) == 3 and all(v == v for v in losses)  # one finite value per step
    assert logged(run_dir, metric), f"no {metric} in the run log"
    preview = next(line for line in logs if line.startswith("data preview"))
    assert "chosen: " in preview and "rejected: " in preview and "tokens trained (the answer)" in preview
    loads_as_causal_lm(run_dir / "model")


def test_dpo_lora_uses_the_base_as_reference_and_exports_one_adapter(tmp_path, tiny_decoder_dir):
    job = parse(
        config(
            tmp_path,
            tiny_decoder_dir,
            "dpo",
            conversational(pair_rows()),
            finetuning_type="lora",
            lora_target="all",
        )
    )
    train(job, log=lambda _: None)
    run_dir = tmp_path / "run"
    margins = logged(run_dir, "rewards/margins")
    assert margins[0] == 0.0 and margins[-1] != 0.0  # step 1: policy == reference (the fresh adapter is zero)
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    assert not (run_dir / "adapter" / "ref").exists()  # TRL's frozen reference adapter is not exported
    loads_as_causal_lm(run_dir / "model")


def test_kto_trains_and_exports(tmp_path, tiny_decoder_dir):
    logs: list[str] = []
    train(parse(config(tmp_path, tiny_decoder_dir, "kto", kto_rows())), log=logs.append)
    run_dir = tmp_path / "run"
    assert len(logged(run_dir, "loss")) == 3 and logged(run_dir, "kl")
    preview = next(line for line in logs if line.startswith("data preview"))
    assert "desirable: " in preview and "undesirable: " in preview
    loads_as_causal_lm(run_dir / "model")


def test_kto_batch_of_one_is_a_config_error(tmp_path, tiny_decoder_dir):
    # Before the model loads (TRL would say it only in its trainer, without naming the key).
    with pytest.raises(
        ConfigError, match=r"per_device_train_batch_size 1: kto estimates its KL term .* 2 or more"
    ):
        parse(config(tmp_path, tiny_decoder_dir, "kto", kto_rows(), per_device_train_batch_size=1))
