"""mg-train's `--backend llamafactory [--lf-version V]` flags: what is refused, in one line, before anything runs
(and the seed's `--llamafactory` spelling pointing at the real flag)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml


def mg_train(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mg_cli.train", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def config(tmp_path, tiny_decoder_dir):
    (tmp_path / "train.jsonl").write_text(json.dumps({"prompt": "hi", "response": "hello"}) + "\n")
    mapping = {
        "task": "sft",
        "model_name_or_path": str(tiny_decoder_dir),
        "train_file": "train.jsonl",
        "output_dir": "run",
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    return tmp_path


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (
            ["--llamafactory"],
            "error: --llamafactory is not a flag; train on LLaMA-Factory with --backend llamafactory",
        ),
        (["--backend", "vllm"], "error: --backend vllm: not one of mg-train, llamafactory"),
        (
            ["--lf-version", "0.9.5"],
            "error: --lf-version picks the LLaMA-Factory release: give it with --backend llamafactory",
        ),
        (
            ["--backend=llamafactory", "--lf-version=0.8.0"],
            "error: --lf-version 0.8.0: not one of 0.9.2, 0.9.3, 0.9.4, 0.9.5 (mg-env's locked releases)",
        ),
    ],
)
def test_wrong_backend_flags_are_one_line(config, flags, says):
    done = mg_train(config, "cfg.yaml", *flags)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [says]


def test_a_key_without_a_llamafactory_equivalent_names_where_it_is(config):
    mapping = yaml.safe_load((config / "cfg.yaml").read_text())
    (config / "cfg.yaml").write_text(
        yaml.safe_dump({**mapping, "eval_generate": 4, "pooling": "mean"}, sort_keys=False)
    )
    done = mg_train(config, "cfg.yaml", "--backend", "llamafactory")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: cfg.yaml:6: pooling: LLaMA-Factory has no equivalent; remove it or train natively (without "
        "--backend llamafactory)"
    )
