"""The HF Trainer with the task's loss, evaluation through mg-eval, and the mg-eval run log."""

from __future__ import annotations

import math

import torch
from transformers import Trainer, TrainerCallback

from mg_eval.evaluate import evaluate as evaluate_task
from mg_eval.runlog import RunLogger

EVAL_TASK = {"classify": "classify", "rm": "rm", "embed": "embed", "rerank": "rerank", "score": "score"}
SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos"}


class PoolingTrainer(Trainer):
    def __init__(self, *args, job, task_module, task_data, eval_examples, **kwargs):
        super().__init__(*args, **kwargs)
        self.job, self.task, self.task_data, self.eval_examples = job, task_module, task_data, eval_examples

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self.task.loss(model, dict(inputs), self.args)
        return (loss, None) if return_outputs else loss

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Task metrics (mg-eval, the same code as `mg-eval run`) plus the loss on the eval set."""
        model = self.accelerator.unwrap_model(self.model)
        backend = self.task.backend(model, self.processing_class, self.job, self.task_data)
        result = evaluate_task(EVAL_TASK[self.job.task], backend, self.eval_examples)
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
