"""A wrong value in a config ends `mg-train` with exit 2 and one line naming the key and where it was given,
before any data is read (the train file here has a bad row: reading it would fail differently)."""

from __future__ import annotations

import pytest

from mg_cli.train import main

HEAD = "task: {task}\nmodel_name_or_path: {model}\ntrain_file: {data}\noutput_dir: {out}\n"  # lines 1-4


def run_cli(capsys, *argv) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    return e.value.code, err.splitlines()


@pytest.fixture
def config(tmp_path):
    data = tmp_path / "t.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n"not a row"\n', encoding="utf-8")

    def write(body: str, *, task: str = "classify", model: str = "m"):
        path = tmp_path / "c.yaml"
        head = HEAD.format(task=task, model=model, data=data, out=tmp_path / "o")
        path.write_text(head + body, encoding="utf-8")
        return path

    return write


@pytest.mark.parametrize(
    "body, message",
    [
        ("per_device_train_batch_size: 0\n", "per_device_train_batch_size must be > 0, not 0"),
        ("per_device_train_batch_size: [8]\n", "per_device_train_batch_size must be an integer, not [8]"),
        ("max_length: -5\n", "max_length must be > 0, not -5"),
        ("cutoff_len: -5\n", "max_length must be > 0, not -5"),
        ("learning_rate: true\n", "learning_rate must be a number, not true"),
        ("learning_rate: [1.0e-4]\n", "learning_rate must be a number, not [0.0001]"),
        ("num_train_epochs: 0\n", "num_train_epochs must be > 0 (or give max_steps), not 0"),
        ("num_train_epochs: -1\n", "num_train_epochs must be > 0 (or give max_steps), not -1"),
        ("max_steps: 0\n", "max_steps must be > 0 (or -1: train num_train_epochs), not 0"),
        (
            "val_size: 1.5\n",
            "val_size must be a fraction in [0, 1) or a number of rows (an integer >= 1), not 1.5",
        ),
        (
            "val_size: -0.2\n",
            "val_size must be a fraction in [0, 1) or a number of rows (an integer >= 1), not -0.2",
        ),
        ("lora_target_modules: 7\n", "lora_target_modules must be a list of str or a string or null, not 7"),
    ],
)
def test_a_wrong_value_is_one_line_naming_file_and_line(capsys, config, body, message):
    path = config(body)
    code, lines = run_cli(capsys, path)
    assert (code, lines) == (2, [f"error: {path}:5: {message}"])


def test_a_string_where_a_list_is_expected(capsys, config):
    path = config("matryoshka_dims: '64'\n", task="embed")
    code, lines = run_cli(capsys, path)
    assert (code, lines) == (2, [f"error: {path}:5: matryoshka_dims must be a list of int or null, not '64'"])


def test_a_wrong_flag_value_names_the_flag(capsys, config):
    path = config("learning_rate: 1e-4\n")
    code, lines = run_cli(capsys, path, "--learning-rate", "true")
    assert (code, lines) == (2, ["error: flag --learning-rate: learning_rate must be a number, not true"])


def test_a_duplicate_key_is_refused_naming_both_lines(capsys, config):
    path = config("learning_rate: 1e-4\nseed: 1\nlearning_rate: 1.0\n")
    code, lines = run_cli(capsys, path)
    assert (code, lines) == (
        2,
        [f"error: {path}:7: key 'learning_rate' is given twice (lines 5 and 7); keep one"],
    )


def test_a_duplicate_key_inside_a_nested_mapping(capsys, config):
    path = config("lr_scheduler_kwargs:\n  power: 1\n  power: 2\n")
    code, lines = run_cli(capsys, path)
    assert (code, lines) == (2, [f"error: {path}:7: key 'power' is given twice (lines 6 and 7); keep one"])


def test_a_folder_with_no_model_in_it(capsys, config, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    path = config("", model=str(empty))
    code, lines = run_cli(capsys, path)
    assert (code, lines) == (
        2,
        [f"error: {path}:2: model_name_or_path {empty} holds no model (no config.json)"],
    )
    (empty / "tokenizer.json").write_text("{}")
    code, lines = run_cli(capsys, path)
    assert (code, lines) == (
        2,
        [f"error: {path}:2: model_name_or_path {empty} holds no model (no config.json)"],
    )


def test_yaml_11_number_strings_still_become_numbers(capsys, config):
    """`5e-5` is a string in YAML 1.1: still read as the number, so the run gets as far as the data."""
    path = config("learning_rate: 5e-5\nnum_train_epochs: 1\n")
    code, lines = run_cli(capsys, path)
    assert code == 1 and lines[-1].endswith("2 rows, 1 valid, 1 invalid")
