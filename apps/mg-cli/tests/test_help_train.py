"""`mg-train --help [--task TASK] [--all]`: generated from the config fields (name, type, default, help,
aliases), exit 0; `mg train --help` shows the same."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mg_cli.main import mg
from mg_cli.train import main
from mg_train.config import DataArgs, ModelArgs


def help_of(capsys, *argv: str) -> str:
    main(list(argv))  # returns: exit 0
    return capsys.readouterr().out


def test_mg_train_help_exits_0_and_lists_the_keys():
    proc = subprocess.run(
        [sys.executable, "-m", "mg_cli.train", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and proc.stderr == ""
    out = proc.stdout
    assert out.startswith("usage: mg-train CONFIG.yaml")
    assert "  max_length: int = 512   (alias: cutoff_len, max_seq_length)\n      Truncate inputs" in out
    assert "  learning_rate: float = 5e-05\n" in out
    assert "  eval_strategy: no | steps | epoch = no (epoch with eval data)\n" in out
    assert "  embed     InfoNCE over in-batch negatives" in out
    assert "mg-train --help --task TASK" in out and "mg-train --help --all" in out


def test_every_model_and_data_field_is_listed(capsys):
    out = help_of(capsys, "--help")
    words = " ".join(out.split())  # a long help is wrapped over several lines
    for cls in (ModelArgs, DataArgs):
        for f in dataclasses.fields(cls):
            assert f"\n  {f.name}: " in out and " ".join(f.metadata["help"].split()) in words


def test_a_task_adds_its_own_fields(capsys):
    plain = help_of(capsys, "--help")
    embed = help_of(capsys, "--help", "--task", "embed")
    assert "  temperature:" not in plain
    assert "\nembed task:\n  temperature: float = 0.05\n      InfoNCE temperature" in embed
    assert "  matryoshka_dims: list[int] | null = null\n" in embed
    assert "  metric_for_best_model: str | null = HF default (ndcg@10 with eval data)\n" in embed
    assert help_of(capsys, "--task=embed", "--help") == embed


def test_all_lists_every_training_argument(capsys):
    plain, everything = help_of(capsys, "--help"), help_of(capsys, "--help", "--all")
    assert "  adam_beta1: float = 0.9\n" in everything and "adam_beta1" not in plain
    assert "--help --all" not in everything


def test_an_unknown_task_in_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help", "--task", "ner"])
    assert e.value.code == 2
    assert (
        capsys.readouterr().err
        == "error: --task ner: not one of classify, rm, embed, rerank, score, pt, sft, dpo, kto, grpo\n"
    )


@pytest.mark.parametrize("extra", [[], ["--task", "rerank"]])
def test_the_umbrella_shows_the_same(capsys, extra):
    expected = help_of(capsys, "--help", *extra)
    result = CliRunner().invoke(mg, ["train", "--help", *extra])
    assert result.exit_code == 0 and result.output == expected
