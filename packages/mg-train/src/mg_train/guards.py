"""The ways a run stops early (a diverged loss, a full disk, Ctrl-C/SIGTERM) as exceptions that say what is on
disk, and `Guards`: the Trainer mixin that raises them. Every trainer mg-train runs (the pooling tasks' and the
TRL trainers of the generative methods) mixes it in first: `class X(Guards, SomeTrainer)`."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers.trainer_utils import get_last_checkpoint

if TYPE_CHECKING:  # what the mixin reads from the Trainer it is mixed into
    from transformers import Trainer as _TrainerBase
else:
    _TrainerBase = object


class TrainingStopped(Exception):
    """The run ended before its last step; the message says why and what is left on disk."""

    exit_code = 1


class Diverged(TrainingStopped):
    """A NaN/inf loss (or weights): nothing after it can be trusted, so no model is exported."""


class DiskFull(TrainingStopped):
    """The disk filled up while saving; the half-written checkpoint is removed, the previous one stays."""


class Interrupted(TrainingStopped):
    """Ctrl-C or SIGTERM: the run stopped at a step boundary and saved `checkpoint`."""

    exit_code = 130

    def __init__(self, signal_name: str, step: int, checkpoint: str):
        super().__init__(f"{signal_name}: stopped after step {step}; saved {checkpoint}")
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint


class Guards(_TrainerBase):
    """No NaN run ends with exit 0, no checkpoint holds non-finite weights, and a full disk is said as such."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        self.check_loss(out[0] if isinstance(out, tuple) else out)
        return out

    def check_loss(self, loss: torch.Tensor) -> None:
        # The HF Trainer logs a NaN loss as the running mean and keeps going (logging_nan_inf_filter), so a
        # diverged run would end with exit 0 and an all-NaN model; one host sync a step is the price.
        if not torch.isfinite(loss.detach()).all():
            self._diverged(
                f"loss is {float(loss.detach().float().mean()):g} at step {self.state.global_step + 1}"
            )

    def _diverged(self, what: str):
        last = self._last_checkpoint()
        kept = f"the last checkpoint, {last}, has finite weights" if last else "no checkpoint was saved"
        raise Diverged(
            f"{what} (learning_rate {self.args.learning_rate:g}): training diverged; lower learning_rate "
            f"or look for extreme values in the data. No model was exported; {kept}"
        )

    def _last_checkpoint(self) -> str | None:
        folder = self.args.output_dir
        return get_last_checkpoint(folder) if folder and Path(folder).is_dir() else None

    def _save_checkpoint(self, model, trial):
        """Only finite weights are saved (so every checkpoint is one to go back to), and a full disk is
        said as such: torch's zip writer reports it as `unexpected pos`, safetensors as an IoError."""
        weights = [p.detach() for p in self.accelerator.unwrap_model(self.model).parameters()]
        if weights and not torch.stack([torch.isfinite(w).all() for w in weights]).all():
            self._diverged(f"the weights are no longer finite after step {self.state.global_step}")
        folder = Path(self._get_output_dir(trial)) / f"checkpoint-{self.state.global_step}"
        try:
            super()._save_checkpoint(model, trial)
        except Exception as e:
            if not disk_full(e, folder.parent):
                raise
            shutil.rmtree(folder, ignore_errors=True)  # half a checkpoint must never be resumed from
            last = self._last_checkpoint()
            raise DiskFull(
                f"disk full while saving {folder.name} to {folder.parent}: free space or set "
                f"save_total_limit ({f'{last} is kept' if last else 'no earlier checkpoint'})"
            ) from None


def disk_full(error: BaseException, folder: Path) -> bool:
    """Whether `error` (raised while writing under `folder`) comes from a full disk."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "errno", None) == errno.ENOSPC:
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(error)
    if any(sign in text for sign in ("No space left", "StorageFull", "os error 28")):
        return True
    # torch.save reports a short write only as "unexpected pos N vs M": ask the filesystem.
    try:
        return shutil.disk_usage(folder).free < 64 * 2**20
    except OSError:
        return False
