import json

import pytest

from mg_train.resume import resolve_resume


@pytest.mark.parametrize("value", [None, "None", "null", "", False, "false", " none "])
def test_null_like_values_start_fresh(value, tmp_path):
    assert resolve_resume(value, tmp_path) is None


def test_auto_picks_the_newest_checkpoint_or_starts_fresh(tmp_path):
    assert resolve_resume("auto", tmp_path / "missing") is None
    assert resolve_resume(True, tmp_path) is None
    for step in (5, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({}))
    assert resolve_resume("auto", tmp_path) == str(tmp_path / "checkpoint-10")


def test_a_path_must_be_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        resolve_resume(str(tmp_path / "nope"), tmp_path)
