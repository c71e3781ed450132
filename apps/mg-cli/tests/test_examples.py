"""Every shipped recipe loads: its YAML parses into a valid config, its first line is the command, and the
data it names passes mg-data's checks for its task."""

from pathlib import Path

import pytest

from mg_cli.train import read_yaml
from mg_data import iter_examples
from mg_train.config import parse

ROOT = Path(__file__).resolve().parents[3]
RECIPES = sorted((ROOT / "examples").glob("*/*.yaml"))


def test_there_are_recipes_for_every_task():
    assert {p.parent.name for p in RECIPES} >= {"classify", "rm", "embed", "rerank", "score"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_loads(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(f"# mg-train examples/{path.parent.name}/{path.name}")
    mapping, _ = read_yaml(str(path))
    job = parse(mapping, source=str(path))
    assert list(iter_examples(job.data.train_file, job.task))
