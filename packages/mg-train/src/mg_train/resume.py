"""What `resume_from_checkpoint` means. A null, "None", "null", "" or false value means start fresh: never
the LLaMA-Factory failure of looking for "None/trainer_state.json"."""

from __future__ import annotations

import os
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

FRESH = {None, "", "none", "null", "false", "no", "0"}


def requested(value) -> bool:
    """Whether `resume_from_checkpoint` asks to resume (a path, "auto" or true) rather than start fresh."""
    return not (
        value is False or value is None or (isinstance(value, str) and value.strip().lower() in FRESH)
    )


def resolve_resume(value, output_dir: str | os.PathLike) -> str | None:
    """None to start fresh, or the checkpoint folder to resume from.

    "auto"/true: the newest checkpoint in output_dir if there is one, else fresh. A path must exist."""
    if not requested(value):
        return None
    if value is True or (
        isinstance(value, str) and value.strip().lower() in ("auto", "true", "yes", "latest")
    ):
        return get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
    path = Path(str(value))
    if not (path / "trainer_state.json").is_file():
        from mg_train.errors import ConfigError

        raise ConfigError(
            f"resume_from_checkpoint: {value} is not a checkpoint folder (no trainer_state.json)"
        )
    return str(path)
