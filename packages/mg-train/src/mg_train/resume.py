"""Where a run starts from: fresh, from a checkpoint, or over a previous run in the same output_dir.

A null, "None", "null", "" or false `resume_from_checkpoint` means start fresh: never the LLaMA-Factory
failure of looking for "None/trainer_state.json". A checkpoint that cannot be read is skipped for the one
before it; a previous run is never silently replaced."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from mg_train.args import TrainJob
from mg_train.errors import ConfigError

FRESH = {None, "", "none", "null", "false", "no", "0"}
# What a run leaves in output_dir besides its checkpoint-N folders (the mg-eval run log, the exported model).
RUN_FILES = ("model", "metrics.jsonl", "samples.jsonl", "train_summary.json", "tb")


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
        raise ConfigError(
            f"resume_from_checkpoint: {value} is not a checkpoint folder (no trainer_state.json)"
        )
    return str(path)


def check_output_dir(job: TrainJob, log) -> None:
    """A fresh run into a folder that holds a previous one would replace its model and append to its run log:
    refuse, unless the run resumes it or overwrite_output_dir asks to start over (then the old run is
    removed first, so the new log starts clean). `log` is None on processes other than the first."""
    run_dir = Path(job.train.output_dir)
    found = previous_run(run_dir)
    if not found or requested(job.train.resume_from_checkpoint):
        return
    listed = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
    if not job.train.overwrite_output_dir:
        raise ConfigError(
            f"output_dir: {run_dir} holds a previous run ({listed}); continue it with --resume "
            "(resume_from_checkpoint: auto) or start over with overwrite_output_dir: true"
        )
    if log is None:
        return  # the first process removes it
    for name in [*found, "config.json"]:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    log(f"overwrite_output_dir: removed the previous run in {run_dir} ({listed})")


def previous_run(run_dir: Path) -> list[str]:
    """The names in `run_dir` that a previous run left there."""
    if not run_dir.is_dir():
        return []
    checkpoints = sorted(p.name for p in run_dir.glob("checkpoint-*") if p.is_dir())
    return [name for name in RUN_FILES if (run_dir / name).exists()] + checkpoints


def complete_checkpoint(checkpoint: str | None, log=print) -> str | None:
    """`checkpoint`, or the newest readable checkpoint beside it when it is not readable.

    The HF Trainer writes trainer_state.json last into checkpoint-N, so a run killed (kill -9) while saving
    leaves a checkpoint-N without it; a full disk or a crash of the filesystem leaves truncated weight or
    optimizer files. Resuming from either would fail (or load garbage), so the previous one is used."""
    if checkpoint is None:
        return None
    problem = checkpoint_problem(Path(checkpoint))
    if problem is None:
        return checkpoint
    steps = {
        int(p.name.removeprefix("checkpoint-")): p
        for p in Path(checkpoint).parent.glob("checkpoint-*")
        if p.name.removeprefix("checkpoint-").isdigit() and checkpoint_problem(p) is None
    }
    found = str(steps[max(steps)]) if steps else None
    if int(os.environ.get("RANK", "0")) == 0:
        log(f"resume: {checkpoint} {problem}; resuming from {found or 'the start'}")
    return found


def checkpoint_problem(folder: Path) -> str | None:
    """Why `folder` cannot be resumed from, or None. Reads every weight file's header and every torch file's
    zip directory (a truncated file has neither), not the tensors: cheap even for large checkpoints."""
    import zipfile

    from safetensors import SafetensorError, safe_open

    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "is incomplete (killed while saving?)"
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt") as f:
                f.keys()
        except (OSError, SafetensorError) as e:
            return f"has unreadable weights ({path.name}: {e})"
    for path in sorted([*folder.glob("*.pt"), *folder.glob("*.pth"), *folder.glob("*.bin")]):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (OSError, zipfile.BadZipFile) as e:
            return f"has an unreadable {path.name} ({e})"
    return None
