"""LLaMA-Factory's own example training YAMLs run natively with `mg-train LF.yaml`.

llamafactory/ mirrors every YAML of LLaMA-Factory v0.9.5's examples/train_lora and examples/train_full (the same
keys and values; the model is the tiny decoder, given as a flag) with small data of our own in the layouts its
data/dataset_info.json declares for the names they use. Each goes through config parsing and data loading from
that folder, as LLaMA-Factory reads `dataset_dir: data` from the current directory; the multimodal and Ray ones
end with one line naming the key; sft, dpo, rm, kto and pt train 2 steps through the real `mg-train` command.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import mg_train, series

from mg_cli.train import read_yaml
from mg_train.config import parse
from mg_train.errors import ConfigError
from mg_train.run import load_data

HERE = Path(__file__).parent / "llamafactory"
# `git ls-tree -r --name-only v0.9.5 examples/train_lora examples/train_full` (and one .sh: the sft YAML as flags)
LLAMAFACTORY_V095 = {
    "train_full/qwen3_full_sft.yaml",
    "train_full/qwen3vl_full_sft.yaml",
    "train_lora/qwen3_lora_dpo.yaml",
    "train_lora/qwen3_lora_kto.yaml",
    "train_lora/qwen3_lora_pretrain.yaml",
    "train_lora/qwen3_lora_reward.yaml",
    "train_lora/qwen3_lora_sft.yaml",
    "train_lora/qwen3_lora_sft_ds3.yaml",
    "train_lora/qwen3_lora_sft_ray.yaml",
    "train_lora/qwen3_preprocess.yaml",
    "train_lora/qwen3vl_lora_dpo.yaml",
    "train_lora/qwen3vl_lora_sft.yaml",
}
ROWS = {"identity": 6, "alpaca_en_demo": 8, "dpo_en_demo": 8, "kto_en_demo": 8, "c4_demo": 8}
# the text examples: (task, the datasets they name, full or LoRA)
LOADS = {
    "train_full/qwen3_full_sft.yaml": ("sft", ["identity", "alpaca_en_demo"], "full"),
    "train_lora/qwen3_lora_dpo.yaml": ("dpo", ["dpo_en_demo"], "lora"),
    "train_lora/qwen3_lora_kto.yaml": ("kto", ["kto_en_demo"], "lora"),
    "train_lora/qwen3_lora_pretrain.yaml": ("pt", ["c4_demo"], "lora"),
    "train_lora/qwen3_lora_reward.yaml": ("rm", ["dpo_en_demo"], "lora"),
    "train_lora/qwen3_lora_sft.yaml": ("sft", ["identity", "alpaca_en_demo"], "lora"),
    "train_lora/qwen3_lora_sft_ds3.yaml": ("sft", ["identity", "alpaca_en_demo"], "lora"),
}
REFUSED = {
    "train_full/qwen3vl_full_sft.yaml": "train_full/qwen3vl_full_sft.yaml:4: image_max_pixels: multimodal inputs "
    "are not supported (mg-train trains text models); remove the key",
    "train_lora/qwen3vl_lora_dpo.yaml": "train_lora/qwen3vl_lora_dpo.yaml:4: image_max_pixels: multimodal inputs "
    "are not supported (mg-train trains text models); remove the key",
    "train_lora/qwen3vl_lora_sft.yaml": "train_lora/qwen3vl_lora_sft.yaml:4: image_max_pixels: multimodal inputs "
    "are not supported (mg-train trains text models); remove the key",
    "train_lora/qwen3_lora_sft_ray.yaml": "train_lora/qwen3_lora_sft_ray.yaml:24: ray_num_workers: Ray is not "
    "supported: train on several GPUs with mg-train --nproc-per-node N (torchrun)",
    "train_lora/qwen3_preprocess.yaml": "train_lora/qwen3_preprocess.yaml:15: tokenized_path: mg-train tokenizes "
    "in memory at each run and saves no tokenized data; check the data with `mg-data validate` and see the first "
    "samples as the model sees them at the start of a run",
}


def parse_example(name: str, model_dir: Path, **overrides):
    """The example as `mg-train NAME --model_name_or_path TINY` parses it (file:line locations included); this
    machine has no bf16."""
    mapping, lines = read_yaml(name)
    flags = {"model_name_or_path": str(model_dir), "bf16": False, **overrides}
    where = {k: f"{name}:{n}" for k, n in lines.items()} | {k: f"flag --{k}" for k in flags}
    return parse({**mapping, **flags}, source=name, locations=where)


def test_there_is_a_fixture_for_every_llamafactory_example():
    assert {str(p.relative_to(HERE)) for p in HERE.glob("train_*/*.yaml")} == LLAMAFACTORY_V095
    assert LOADS.keys() | REFUSED.keys() == LLAMAFACTORY_V095


@pytest.mark.parametrize("name", sorted(LOADS))
def test_a_text_example_parses_and_its_data_loads(name, tiny_decoder_dir, monkeypatch):
    monkeypatch.chdir(HERE)
    task, datasets, method = LOADS[name]
    # kto's example batch of 1 is refused (test below); everything else in it loads as written.
    job = parse_example(
        name, tiny_decoder_dir, **({"per_device_train_batch_size": 2} if task == "kto" else {})
    )
    train, eval_ = load_data(job)
    assert job.task == task and job.model.finetuning_type == method
    assert len(train) == sum(ROWS[d] for d in datasets) and eval_ == []  # max_samples 1000 cuts nothing
    if datasets[0] == "identity":  # concatenated in the order given
        assert "Pebble" in json.dumps(train[0], ensure_ascii=False)
        assert train[ROWS["identity"]]["messages"][0]["content"].startswith("Give three tips")
    assert job.model.max_length == 2048 and job.data.max_samples == 1000
    assert job.train.warmup_steps == 0.1 and job.train.get_warmup_steps(50) == 5  # warmup_ratio: 0.1
    assert job.train.resume_from_checkpoint is None
    if method == "lora":
        assert (job.model.lora_r, job.model.lora_alpha, job.model.lora_target_modules) == (
            8,
            16,
            "all-linear",
        )


def test_the_kto_example_batch_of_one_is_one_line_naming_the_key(tiny_decoder_dir, monkeypatch):
    monkeypatch.chdir(HERE)
    name = "train_lora/qwen3_lora_kto.yaml"
    with pytest.raises(ConfigError) as refused:
        parse_example(name, tiny_decoder_dir)
    line = read_yaml(name)[1]["per_device_train_batch_size"]
    assert str(refused.value).startswith(
        f"{name}:{line}: per_device_train_batch_size 1: kto estimates its KL term from the other rows"
    )


def test_max_samples_cuts_each_dataset(tiny_decoder_dir, monkeypatch):
    monkeypatch.chdir(HERE)
    job = parse_example("train_lora/qwen3_lora_sft.yaml", tiny_decoder_dir, max_samples=2)
    train, _ = load_data(job)
    assert [ex["messages"][0]["content"] for ex in train] == [
        "hi",
        "Who are you?",
        "Give three tips for staying healthy.",
        "Translate to French.\nGood morning",
    ]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_multimodal_or_ray_example_ends_with_one_line_naming_the_key(name, tiny_decoder_dir, monkeypatch):
    monkeypatch.chdir(HERE)
    with pytest.raises(ConfigError) as e:
        parse_example(name, tiny_decoder_dir)
    assert str(e.value) == REFUSED[name]


def test_the_refusal_on_the_command_line_is_that_line(tiny_decoder_dir, tmp_path):
    name = "train_lora/qwen3vl_lora_sft.yaml"
    proc = mg_train(
        name, "--model_name_or_path", tiny_decoder_dir, "--output_dir", tmp_path / "run", cwd=HERE
    )
    assert (proc.returncode, proc.stderr.strip().splitlines()) == (2, [f"error: {REFUSED[name]}"])


# Two steps, small rows; logging every step to see the learning rate; no worker processes and no checkpoints on
# 2 cores. Everything else as the example says (warmup_ratio 0.1, cosine, LoRA on all linear layers, ...).
RUN = (
    "--max_steps", "2", "--cutoff_len", "128", "--logging_steps", "1", "--gradient_accumulation_steps", "2",
    "--bf16", "false", "--dataloader_num_workers", "0", "--save_strategy", "no",
)  # fmt: skip


@pytest.mark.slow  # ~15-25 s each here: a process that loads torch, TRL and the tiny model, and trains 2 steps
@pytest.mark.parametrize(
    "name, extra",
    [
        ("train_lora/qwen3_lora_sft.yaml", ()),
        ("train_lora/qwen3_lora_dpo.yaml", ()),
        ("train_lora/qwen3_lora_reward.yaml", ()),
        # TRL's KTO estimates its KL term from the other rows of a batch: a batch of one is refused (one line)
        ("train_lora/qwen3_lora_kto.yaml", ("--per_device_train_batch_size", "2")),
        ("train_lora/qwen3_lora_pretrain.yaml", ()),
    ],
    ids=["sft", "dpo", "rm", "kto", "pt"],
)
def test_an_example_trains_two_steps(name, extra, tiny_decoder_dir, tmp_path):
    run_dir = tmp_path / "run"
    proc = mg_train(
        name, "--model_name_or_path", tiny_decoder_dir, "--output_dir", run_dir, *RUN, *extra, cwd=HERE
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert len(series(run_dir, "train", "loss")) == 2
    # warmup_ratio 0.1 of 2 steps: ceil(0.2) = 1 warmup step. Each step logs the rate it trained at: step 1 warms
    # up from 0, step 2 starts the cosine at the peak (no warmup: peak then half; 2 warmup steps: 0 then half).
    peak = read_yaml(str(HERE / name))[0]["learning_rate"]
    assert series(run_dir, "train", "learning_rate") == pytest.approx([0.0, peak])
    assert (run_dir / "model" / "config.json").is_file()
    # LoRA: generative runs keep the adapter beside the merged model (rm's is merged: vLLM takes no new head)
    assert (run_dir / "adapter" / "adapter_config.json").is_file() == ("reward" not in name)
    notes = proc.stderr
    assert "not used here: preprocessing_num_workers (mg-train tokenizes in memory at each run)" in notes
    if "reward" in name:
        # one pair's long prompt fills the 128 tokens: both answers are cut off, so it would score as a tie
        assert "max_length 128: 1 of 8 train examples are longer and are cut at the end" in notes
        assert "template: qwen3_nothink not used by task rm" in notes
