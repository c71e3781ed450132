"""The pooling tasks' HF Trainer (the task's loss, evaluation through mg-eval), the run log callback and the
Ctrl-C/SIGTERM stop. The stop exceptions and the NaN/disk-full guards every trainer shares are in guards.py."""

from __future__ import annotations

import math
import signal
import threading

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from mg_eval.evaluate import evaluate as evaluate_task
from mg_eval.runlog import SUMMARY_KEYS, RunLogger
from mg_train.guards import (  # noqa: F401  re-exported: the CLI and run.py name them from here
    DiskFull,
    Diverged,
    Guards,
    Interrupted,
    TrainingStopped,
    disk_full,
)


class PoolingTrainer(Guards, Trainer):
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
        self.check_loss(loss)
        return (loss, None) if return_outputs else loss

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
