"""An mg-train config translated to LLaMA-Factory's arguments: names, values, mg-train's own defaults written
out, and one line naming a key LLaMA-Factory has no equivalent for (with where it was given)."""

from __future__ import annotations

import math

import pytest

from mg_lf_bridge import BridgeError
from mg_lf_bridge.translate import translate
from mg_testing.datasets import pair_rows, write_jsonl
from mg_train.config import parse


def job(tmp_path, model_dir, **keys):
    rows = pair_rows() if keys.get("task") == "dpo" else [{"prompt": "hi", "response": "hello"}]
    mapping = {
        "task": "sft",
        "model_name_or_path": str(model_dir),
        "train_file": str(write_jsonl(tmp_path / "train.jsonl", rows)),
        "output_dir": str(tmp_path / "run"),
        **keys,
    }
    return parse(mapping, source="cfg.yaml")


def test_lora_sft_gets_llamafactory_names_and_mg_train_defaults(tmp_path, tiny_decoder_dir):
    args = translate(
        job(tmp_path, tiny_decoder_dir, finetuning_type="lora", lora_r=4, max_length=96, warmup_steps=0.1),
        "0.9.5",
    ).args
    assert args["stage"] == "sft" and args["do_train"] is True
    assert args["model_name_or_path"] == str(tiny_decoder_dir)
    assert (args["lora_rank"], args["lora_alpha"], args["cutoff_len"]) == (4, 16, 96)
    # mg-train's defaults where LLaMA-Factory's differ: peft's targets for the architecture (LLaMA-Factory: all),
    # its LoRA dropout, gradient checkpointing off, no reporters, bf16 decided for this CPU machine
    assert args["lora_target"] == "q_proj,v_proj"
    assert args["lora_dropout"] == 0.05
    assert args["disable_gradient_checkpointing"] is True
    assert args["report_to"] == "none" and args["bf16"] is False
    assert args["save_strategy"] == "epoch" and args["logging_steps"] == 10
    # transformers 4 (LLaMA-Factory <= 0.9.4) takes no fraction in warmup_steps: the ratio keeps its own name
    assert args["warmup_ratio"] == 0.1 and "warmup_steps" not in args


def test_all_linear_targets_packing_and_trained_tokens(tmp_path, tiny_decoder_dir):
    args = translate(
        job(tmp_path, tiny_decoder_dir, lora_target="all", packing=True, train_on="last_assistant"), "0.9.5"
    ).args
    assert args["finetuning_type"] == "lora" and args["lora_target"] == "all"
    # mg-train's packing keeps samples apart: LLaMA-Factory's neat_packing
    assert args["packing"] is True and args["neat_packing"] is True
    assert args["mask_history"] is True and "train_on_prompt" not in args


def test_dpo_keys_become_pref_keys(tmp_path, tiny_decoder_dir):
    args = translate(
        job(tmp_path, tiny_decoder_dir, task="dpo", beta=0.2, loss_type="ipo", label_smoothing=0.1), "0.9.5"
    ).args
    assert args["stage"] == "dpo"
    assert (args["pref_beta"], args["pref_loss"], args["dpo_label_smoothing"]) == (0.2, "ipo", 0.1)
    # TRL's DPO learning rate (mg-train's dpo default), not transformers' 5e-5 that LLaMA-Factory would take
    assert math.isclose(args["learning_rate"], 1e-6)


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ({"task": "dpo", "use_weighting": True}, "cfg.yaml: use_weighting: LLaMA-Factory has no equivalent"),
        ({"task": "dpo", "loss_type": ["sigmoid", "sft"]}, "LLaMA-Factory's pref_loss is one of"),
        ({"pooling": "mean"}, "cfg.yaml: pooling: LLaMA-Factory has no equivalent"),
    ],
)
def test_a_key_without_an_equivalent_is_one_line_naming_it(tmp_path, tiny_decoder_dir, keys, says):
    with pytest.raises(BridgeError) as e:
        translate(job(tmp_path, tiny_decoder_dir, **keys), "0.9.5", lambda key: "cfg.yaml")
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_task_llamafactory_does_not_train_is_refused(tmp_path, tiny_encoder_dir):
    rows = [{"prompt": "good", "label": "pos"}, {"prompt": "bad", "label": "neg"}]
    config = {
        "task": "classify",
        "model_name_or_path": str(tiny_encoder_dir),
        "train_file": str(write_jsonl(tmp_path / "t.jsonl", rows)),
        "output_dir": str(tmp_path / "run"),
    }
    with pytest.raises(BridgeError, match="task classify: LLaMA-Factory has no such stage"):
        translate(parse(config), "0.9.5")


def test_names_a_release_does_not_have_are_refused_for_it(tmp_path, tiny_decoder_dir):
    """ld_alpha came with LLaMA-Factory 0.9.3 (its finetuning_args)."""
    dpo = job(tmp_path, tiny_decoder_dir, task="dpo", ld_alpha=0.5)
    assert translate(dpo, "0.9.5").args["ld_alpha"] == 0.5
    with pytest.raises(BridgeError, match="LLaMA-Factory 0.9.2 has no ld_alpha"):
        translate(dpo, "0.9.2")


def test_keys_that_change_nothing_there_are_named_in_one_note(tmp_path, tiny_decoder_dir):
    translation = translate(job(tmp_path, tiny_decoder_dir, preview_samples=5, eval_generate=4), "0.9.5")
    assert "preview_samples" not in translation.args and "eval_generate" not in translation.args
    assert len(translation.notes) == 1 and "preview_samples" in translation.notes[0]
    assert "eval_generate" in translation.notes[0]
