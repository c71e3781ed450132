"""`mg-train` user errors: one line saying what and where, a non-zero exit, nothing heavy loaded."""

from conftest import mg_train, write_config

from mg_cli.train import parse_argv, read_yaml, torchrun_command
from mg_testing.datasets import write_jsonl
from mg_train.config import parse


def test_unknown_key_names_file_line_and_nearest(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "task: classify\nmodel_name_or_path: m\ntrain_file: t.jsonl\noutput_dir: o\nlearning_rat: 1e-4\n"
    )
    proc = mg_train(cfg)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {cfg}:5: unknown key 'learning_rat'; did you mean 'learning_rate'?"


def test_flag_overrides_beat_the_file(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        task="classify",
        model_name_or_path="m",
        train_file="t.jsonl",
        output_dir="o",
        learning_rate=1e-4,
    )
    proc = mg_train(cfg, "--learning-rat", "2")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "error: flag --learning-rat: unknown key 'learning_rat'; did you mean 'learning_rate'?"
    )
    config_path, overrides, launch = parse_argv(
        [str(cfg), "--learning_rate", "2e-4", "--num-train-epochs=2", "--nproc-per-node", "2", "--resume"]
    )
    mapping, _ = read_yaml(config_path)
    job = parse({**mapping, **overrides})
    assert job.train.learning_rate == 2e-4 and job.train.num_train_epochs == 2  # flags beat the file
    assert overrides["resume_from_checkpoint"] == "auto" and launch == {"nproc_per_node": "2"}
    assert torchrun_command([str(cfg), "--nproc-per-node", "2", "--resume"], launch)[-4:] == [
        "-m",
        "mg_cli.train",
        str(cfg),
        "--resume",
    ]


def test_bad_rows_fail_before_the_model_loads(tmp_path):
    data = write_jsonl(
        tmp_path / "t.jsonl", [{"text": "好", "label": "a"}, {"text": "", "label": "b"}, "oops"]
    )
    cfg = write_config(
        tmp_path / "c.yaml",
        task="classify",
        model_name_or_path=str(tmp_path / "no-model"),
        train_file=str(data),
        output_dir=str(tmp_path / "o"),
    )
    proc = mg_train(cfg)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[:3] == [
        f"{data}:2: text is empty",
        f"{data}:3: a classify row must be an object, got a string",
        f"{data}: 3 rows, 1 valid, 2 invalid",
    ]
    assert not (tmp_path / "o").exists()


def test_eval_label_unseen_in_training(tmp_path, tiny_encoder_dir):
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}])
    eval_ = write_jsonl(tmp_path / "e.jsonl", [{"text": "c", "label": "z"}])
    cfg = write_config(
        tmp_path / "c.yaml",
        task="classify",
        model_name_or_path=str(tiny_encoder_dir),
        train_file=str(train),
        eval_file=str(eval_),
        output_dir=str(tmp_path / "o"),
    )
    proc = mg_train(cfg)
    assert proc.returncode == 2
    assert "eval example 1 has label 'z', which training data never has; known labels: x, y" in proc.stderr


def test_missing_config_and_usage(tmp_path):
    proc = mg_train(tmp_path / "none.yaml")
    assert (
        proc.returncode == 2
        and proc.stderr.strip() == f"error: {tmp_path / 'none.yaml'}: no such config file"
    )
    proc = mg_train()
    assert proc.returncode == 2 and proc.stderr.startswith("usage: mg-train CONFIG.yaml")
