"""A native LLaMA-Factory YAML: told apart from an mg-train config, and passed on with only the fixes below.

Fixes (each a trap of running LLaMA-Factory directly):
- `resume_from_checkpoint` meaning "no" (null, None, "None", "null", "", false) is dropped: LLaMA-Factory takes
  the string "None" (what `resume_from_checkpoint: None` is in YAML) as a folder and fails with
  FileNotFoundError: ... 'None/trainer_state.json' (the bug the product README documents).
- `output_dir` is the run folder, ours as for any mg-train run; LLaMA-Factory writes into its `llamafactory/`.
The version checks are left on: the env mg-env builds satisfies them (DISABLE_VERSION_CHECK is never set).
"""

from __future__ import annotations

from typing import Any

# Keys only LLaMA-Factory's configs have (and mg-train configs need not): `stage` and `dataset` are in every
# training YAML of its examples.
NATIVE_KEYS = ("stage", "dataset")
# Keys only mg-train configs have: a config with one of them is mg-train's, whatever else it holds.
MG_KEYS = ("task", "train_file")
NO_RESUME = {"", "none", "null", "false", "no"}


def is_native(mapping: dict[str, Any]) -> bool:
    return any(k in mapping for k in NATIVE_KEYS) and not any(k in mapping for k in MG_KEYS)


def no_resume(value: Any) -> bool:
    """Whether a resume_from_checkpoint value means "start fresh"."""
    return value is None or value is False or (isinstance(value, str) and value.strip().lower() in NO_RESUME)


def resume_wanted(value: Any) -> bool:
    """Whether it asks for the newest checkpoint of output_dir (mg-train's --resume writes "auto")."""
    return value is True or (
        isinstance(value, str) and value.strip().lower() in ("auto", "true", "yes", "latest")
    )
