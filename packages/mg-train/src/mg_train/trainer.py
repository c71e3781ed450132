"""The HF Trainer with the task's loss, evaluation through mg-eval, and the mg-eval run log; and the ways a
run stops early (a diverged loss, a full disk, Ctrl-C/SIGTERM) as exceptions that say what is on disk."""

from __future__ import annotations

import errno
import math
import shutil
import signal
import threading
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices
from transformers.trainer_utils import get_last_checkpoint

from mg_eval.evaluate import evaluate as evaluate_task
from mg_eval.runlog import RunLogger

# Run-level values of the last log line: run.py writes them to the run log's summary, not as train points.
SUMMARY_KEYS = {
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "total_flos",
    "train_loss",
}


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


class PoolingTrainer(Trainer):
    def __init__(self, *args, job, task_module, task_data, eval_examples, **kwargs):
        super().__init__(*args, **kwargs)
        self.job, self.task, self.task_data, self.eval_examples = job, task_module, task_data, eval_examples

    def _get_train_sampler(self, train_dataset=None):
        """`train_sampling_strategy: group_by_length` for our datasets of examples (the HF sampler only measures
        tokenized rows), with small groups so that in-batch negatives stay varied."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        examples = getattr(dataset, "examples", None)
        if self.args.train_sampling_strategy != "group_by_length" or examples is None:
            return super()._get_train_sampler(train_dataset)
        # One optimizer step's rows on every process together: the processes then split the same rows that
        # one process would train on (a batch of similar lengths, whatever the number of processes).
        args = self.args
        size = args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        return SimilarLengthBatches(size, lengths=[text_length(ex) for ex in examples], seed=args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.task.loss(model, dict(inputs), self.args)
        # The HF Trainer logs a NaN loss as the running mean and keeps going (logging_nan_inf_filter), so a
        # diverged run would end with exit 0 and an all-NaN model; one host sync a step is the price.
        if not torch.isfinite(loss.detach()):
            self._diverged(f"loss is {float(loss.detach()):g} at step {self.state.global_step + 1}")
        return (loss, None) if return_outputs else loss

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

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Task metrics (mg-eval, the same code as `mg-eval run`) plus the loss on the eval set."""
        model = self.accelerator.unwrap_model(self.model)
        backend = self.task.backend(model, self.processing_class, self.job, self.task_data)
        result = evaluate_task(self.job.task, backend, self.eval_examples)
        metrics = {
            f"{metric_key_prefix}_{k}": float(v)
            for k, v in result.metrics.items()
            if isinstance(v, int | float) and k not in ("queries", "queries_without_relevant")
        }
        metrics[f"{metric_key_prefix}_loss"] = self._eval_loss()
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    @torch.no_grad()
    def _eval_loss(self) -> float:
        model = self.model
        assert model is not None  # the Trainer was built with one
        was_training = model.training
        model.eval()
        collate = self.data_collator
        total, batches = 0.0, 0
        size = self.args.per_device_eval_batch_size
        for i in range(0, len(self.eval_examples), size):
            batch = self._prepare_inputs(collate(self.eval_examples[i : i + size]))
            total += float(self.task.loss(model, dict(batch), self.args))
            batches += 1
        model.train(was_training)
        return total / batches if batches else math.nan


class SimilarLengthBatches(LengthGroupedSampler):
    """Batches of examples of similar length: the examples are shuffled, cut into groups of GROUP batches, and
    each group is sorted by length before it is cut into batches. Padding to the longest row of a batch then
    costs little, while a batch still draws its rows (and so its in-batch negatives) from a random group of
    GROUP x batch size examples (the HF sampler's groups hold up to 50 batches: nearly equal lengths only).
    GROUP = 4 is measured (bench/README.md): groups of 8 trained all-MiniLM-L6-v2 to a held-out NDCG@10 0.01
    below random batches; groups of 4 stay within the spread of random batches over seeds."""

    GROUP = 4

    def __init__(self, batch_size: int, *, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer (through accelerate) before each epoch: the order is a function of seed and
        epoch alone, so a resumed run and every process see the same order as an uninterrupted one."""
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # the next epoch's order, should nobody call set_epoch
        return iter(
            get_length_grouped_indices(
                self.lengths, self.batch_size, mega_batch_mult=self.GROUP, generator=generator
            )
        )


def text_length(example) -> int:
    """The characters of every text in a normalized example: a cheap stand-in for its token count."""
    if isinstance(example, str):
        return len(example)
    if isinstance(example, dict):
        return sum(text_length(v) for v in example.values())
    if isinstance(example, list | tuple):
        return sum(text_length(v) for v in example)
    return 0


class RunLogCallback(TrainerCallback):
    """Every HF log line into the run log (metrics.jsonl + TensorBoard), split train/eval."""

    def __init__(self, logger: RunLogger):
        self.logger = logger

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        epoch = logs.get("epoch")
        train, evals = {}, {}
        for key, value in logs.items():
            if key == "epoch" or key in SUMMARY_KEYS or not isinstance(value, int | float):
                continue
            if key.startswith("eval_"):
                evals[key[5:]] = value
            else:
                train[key] = value
        if train:
            self.logger.log(state.global_step, train, split="train", epoch=epoch)
        if evals:
            self.logger.log(state.global_step, evals, split="eval", epoch=epoch)


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


class StopOnSignal(TrainerCallback):
    """SIGINT (Ctrl-C) and SIGTERM (what cluster schedulers send before SIGKILL): finish the step, save a
    checkpoint and stop. A second signal stops at once (KeyboardInterrupt), without saving.

    Installed only in the main thread of a single-process run: under torchrun every worker gets the signal
    at its own step, and workers stopping at different steps would wait on each other forever."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, log=print):
        self.log, self.received, self._previous = log, None, {}

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received:
            self.restore()
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        self.log(f"{self.received}: stopping after this step and saving a checkpoint (again: stop at once)")

    def on_step_end(self, args, state, control, **kwargs):
        if self.received and state.global_step < state.max_steps:
            control.should_training_stop = True
            control.should_save = True
