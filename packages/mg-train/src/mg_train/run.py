"""train(job): data checked → model built → trained (resumable) → best or final model exported to
<output_dir>/model in the layout vLLM serves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, cast

from mg_data import iter_examples
from mg_train.config import ConfigError, TrainJob
from mg_train.resume import check_output_dir, complete_checkpoint, resolve_resume

if TYPE_CHECKING:
    from mg_train.tasks import GenerativeModule, PoolingModule


class ListDataset:
    """Normalized examples as a map-style dataset (the collator tokenizes)."""

    def __init__(self, examples: list[dict]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]


def load_data(job: TrainJob) -> tuple[list[dict], list[dict]]:
    """Every row of every source is checked (mg-data) before anything heavy happens. Sources are read in order,
    each cut to max_samples rows (LLaMA-Factory's per-dataset cut); val_size then holds out training rows."""
    seed = job.train.seed  # also draws an entry's num_samples rows, as LLaMA-Factory's seeded numpy does
    train = read_sources(job.data.train_sources, job.task, job.data.max_samples, seed)
    eval_ = read_sources(job.data.eval_sources, job.task, job.data.max_samples, seed)
    if not train:
        raise ConfigError(f"{', '.join(job.data.train_sources)}: no training examples")
    if not eval_ and job.data.val_size:
        train, eval_ = hold_out(train, job.data.val_size, job.train.seed)
    return train, eval_


def read_sources(sources: list[str], task: str, max_samples: int | None, seed: int) -> list[dict]:
    return [
        example
        for source in sources
        for example in iter_examples(source, task, max_samples=max_samples, seed=seed)
    ]


def hold_out(rows: list[dict], val_size: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, eval) as LLaMA-Factory splits with val_size (HF datasets' train_test_split): a fraction rounds the
    eval count up, an integer is the count; rows in the order of numpy's permutation seeded with `seed`, eval
    first. So the same rows are held out as there."""
    import math

    import numpy as np

    count = int(val_size) if val_size >= 1 else math.ceil(val_size * len(rows))
    if count >= len(rows):
        raise ConfigError(
            f"val_size {val_size:g} holds out {count} of {len(rows)} training rows: none would be left to train on"
        )
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[i] for i in order[count:]], [rows[i] for i in order[:count]]


def train(job: TrainJob, *, log=print) -> dict:
    import torch
    import transformers
    from transformers import AutoTokenizer, TrainerCallback

    from mg_eval.runlog import RunLogger, write_json_atomic
    from mg_heads.tokenize import ensure_pad_token
    from mg_train.console import quiet_model_loading, summary_lines
    from mg_train.launch import distributed_args
    from mg_train.preview import format_preview, preview_samples
    from mg_train.tasks import get, is_generative
    from mg_train.trainer import (
        DiskFull,
        Interrupted,
        PoolingTrainer,
        RunLogCallback,
        StopOnSignal,
        disk_full,
    )

    task = get(job.task)
    generative = is_generative(job.task)
    job.train = distributed_args(job.train)  # torchrun on a CPU-only machine: see launch.py
    is_main = int(os.environ.get("RANK", "0")) == 0
    check_output_dir(job, log if is_main else None)
    train_examples, eval_examples = load_data(job)
    for config_note in job.notes if is_main else []:  # after the data: a data error is then all that is said
        log(config_note)
    if job.train.eval_strategy != "no" and not eval_examples:
        raise ConfigError("eval_strategy is set but there is no eval data (eval_file or val_size)")
    resume = complete_checkpoint(resolve_resume(job.train.resume_from_checkpoint, job.train.output_dir), log)
    task_data = task.prepare(job, train_examples, eval_examples)

    if not os.path.isdir(job.model.model_name_or_path) and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConfigError(
            f"model_name_or_path: {job.model.model_name_or_path} is not a folder (and the hub is offline)"
        )
    tokenizer = AutoTokenizer.from_pretrained(job.model.model_name_or_path)
    ensure_pad_token(tokenizer)  # decoders without a pad token pad with eos (mg-heads README: pad == eos)
    first = train_examples[: job.data.preview_samples]
    if is_generative_module(task, generative):
        note = task.prepare_tokenizer(job, tokenizer)
        if note and is_main:
            log(note)
        samples = task.preview(job, task_data, tokenizer, first) if first else []
    else:
        collate = cast("PoolingModule", task).collate(tokenizer, job, task_data)
        samples = preview_samples(train_examples, collate, tokenizer, job.task, job.data.preview_samples)
        if is_main:
            truncated_note(
                cast("PoolingModule", task), tokenizer, job, task_data, train_examples, eval_examples, log
            )
    if is_main and samples:
        log(
            f"data preview: {len(train_examples)} train / {len(eval_examples)} eval examples; first samples as "
            "the model sees them:\n" + format_preview(samples)
        )

    transformers.set_seed(job.train.seed)
    with quiet_model_loading(log if is_main else None):
        model = build_model(job, task, task_data, tokenizer)
    if not torch.accelerator.is_available():
        job.train.dataloader_pin_memory = False  # nothing to pin for; torch warns for every DataLoader

    run_dir = Path(job.train.output_dir)
    logger = RunLogger(run_dir, config=job.raw) if is_main else None
    if logger and not resume:
        logger.log_samples(samples, split="train", step=0)
    callbacks: list[TrainerCallback] = [RunLogCallback(logger)] if logger else []
    stop = StopOnSignal(log)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 and stop.install():
        callbacks.append(stop)
    if is_generative_module(task, generative):
        trainer = task.trainer(
            job,
            task_data,
            model=model,
            tokenizer=tokenizer,
            train=train_examples,
            eval_=eval_examples,
            callbacks=callbacks,
            log=log if is_main else (lambda line: None),
        )
    else:
        trainer = PoolingTrainer(
            model=model,
            args=job.train,
            train_dataset=ListDataset(train_examples),
            eval_dataset=ListDataset(eval_examples) if eval_examples else None,
            data_collator=collate,
            processing_class=tokenizer,
            callbacks=callbacks,
            job=job,
            task_module=task,
            task_data=task_data,
            eval_examples=eval_examples,
        )
    try:
        with quiet_model_loading(None):  # load_best_model_at_end reloads a checkpoint
            outcome = trainer.train(resume_from_checkpoint=resume)
    except BaseException:
        close_progress_bar(trainer)  # so that the error is printed on a line of its own
        if logger:
            logger.close()
        raise
    finally:
        stop.restore()
    if stop.received and trainer.state.global_step < trainer.state.max_steps:
        if logger:
            logger.close()
        checkpoint = run_dir / f"checkpoint-{trainer.state.global_step}"
        raise Interrupted(stop.received, trainer.state.global_step, str(checkpoint))
    final, final_step = final_evaluation(trainer, job, logger, outcome) if eval_examples else ({}, None)
    if logger:  # run-level values: a table in the report, not one-point curves
        logger.log_summary(outcome.global_step, {k: v for k, v in outcome.metrics.items() if k != "epoch"})

    summary = {
        "task": job.task,
        "train_loss": outcome.training_loss,
        "global_step": outcome.global_step,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "final_step": final_step,  # the step of the checkpoint the eval_* values (and the export) come from
        **final,
    }
    export_dir = run_dir / "model"
    model_to_export = _exportable(trainer, lambda: build_model(job, task, task_data, tokenizer))
    if trainer.is_world_process_zero():
        training = {
            "task": job.task,
            "finetuning_type": job.model.finetuning_type,
            "base_model": job.model.model_name_or_path,
            "epochs": job.train.num_train_epochs,
            "learning_rate": job.train.learning_rate,
            "steps": outcome.global_step,
            "best_checkpoint": trainer.state.best_model_checkpoint,
        }
        try:
            exported = task.export(model_to_export, tokenizer, export_dir, job, task_data, training)
        except Exception as e:
            if not disk_full(e, run_dir):
                raise
            raise DiskFull(
                f"disk full while exporting the model to {export_dir}: free space (or set save_total_limit), "
                "then run again with --resume to export it"
            ) from None
        summary["model_dir"] = str(exported.path)
        if exported.adapter:
            summary["adapter_dir"] = str(exported.adapter)
        write_json_atomic(run_dir / "train_summary.json", summary)
        runtime = outcome.metrics.get("train_runtime")
        best_loaded = bool(job.train.load_best_model_at_end and trainer.state.best_model_checkpoint)
        lines = summary_lines(
            summary,
            runtime,
            exported.serve_command,
            best_loaded=best_loaded,
            adapter_command=exported.adapter_serve_command,
        )
        for line in lines:
            log(line)
    if logger:
        logger.close()
    return summary


def truncated_note(
    task, tokenizer, job: TrainJob, task_data, train: list[dict], eval_: list[dict], log
) -> None:
    """One line when rows are longer than max_length: they are cut, silently otherwise (an rm pair cut before its
    answers differ scores as a tie)."""
    from mg_train.tasks.base import count_truncated

    counts = {
        split: (count_truncated(task, tokenizer, job, task_data, rows), len(rows))
        for split, rows in (("train", train), ("eval", eval_))
        if rows
    }
    if any(n for n, _ in counts.values()):
        said = " and ".join(f"{n} of {total} {split}" for split, (n, total) in counts.items())
        tie = " (a pair whose answers lie past it scores as a tie)" if job.task == "rm" else ""
        log(
            f"max_length {job.model.max_length}: {said} examples are longer and are cut at the end{tie}; raise "
            "max_length to keep them"
        )


def close_progress_bar(trainer) -> None:
    """The HF Trainer closes its bar at the end of training only, not when training raises."""
    from transformers.trainer_callback import ProgressCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, ProgressCallback) and callback.training_bar is not None:
            callback.training_bar.close()
            callback.training_bar = None


def final_evaluation(trainer, job: TrainJob, logger, outcome) -> tuple[dict, int]:
    """Evaluate the model that is exported (the best checkpoint when load_best_model_at_end loaded it) and log
    it to the run log as the final evaluation at that checkpoint's step, not as one more point of the eval
    curve at the last step. Returns the metrics (eval_*), as the summary and console show them, and the step."""
    from mg_train.trainer import RunLogCallback

    best = trainer.state.best_model_checkpoint
    step = outcome.global_step
    if job.train.load_best_model_at_end and best:
        step = int(Path(best).name.removeprefix("checkpoint-"))
    trainer.remove_callback(RunLogCallback)  # its eval records would extend the curve
    final = trainer.evaluate()
    if logger:
        logger.log_final(step, {k.removeprefix("eval_"): v for k, v in final.items() if k != "epoch"})
    return final, step


def build_model(job: TrainJob, task, task_data, tokenizer):
    """The task's model, with LoRA adapters when finetuning_type is lora."""
    model = task.build_model(job, task_data, tokenizer)
    target = job.model.lora_target_modules
    if job.model.finetuning_type == "lora":
        from mg_heads.lora import apply_lora

        model = apply_lora(
            model,
            job.task,
            r=job.model.lora_r,
            alpha=job.model.lora_alpha,
            dropout=job.model.lora_dropout,
            # LLaMA-Factory's `all`: every linear layer but the head (peft's name for it)
            target_modules="all-linear" if target in ("all", ["all"]) else target,
        )
    return model


def is_generative_module(task, generative: bool) -> TypeGuard[GenerativeModule]:
    """Narrows the task module for the type checker: generative modules build their own trainer."""
    return generative


def _exportable(trainer, build):
    """The trained model with full weights on process 0 (None elsewhere under ZeRO-3).

    ZeRO-3 keeps only a shard of each parameter per process (a copy of the module would be a copy of
    empty shards), so every process takes part in gathering each parameter in turn, process 0 keeps a
    CPU copy, and loads it into a freshly built model: built outside ZeRO-3's partitioning context,
    which would otherwise run collectives on process 0 alone."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not (trainer.is_deepspeed_enabled and trainer.accelerator.state.deepspeed_plugin.zero_stage == 3):
        return model
    import deepspeed
    from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

    main = trainer.is_world_process_zero()
    entries = model.state_dict(keep_vars=True)  # names and (empty) ZeRO-3 parameters, plus buffers
    state = {}
    for name, tensor in entries.items():
        if hasattr(tensor, "ds_id"):  # a partitioned parameter: a collective, every process in order
            with deepspeed.zero.GatheredParameters([tensor], modifier_rank=None):
                if main:
                    state[name] = tensor.detach().to("cpu", copy=True)
        elif main:
            state[name] = tensor.detach().to("cpu", copy=True)
    if not main:
        return None
    unset_hf_deepspeed_config()
    try:
        full = build()
    finally:
        set_hf_deepspeed_config(trainer.args.hf_deepspeed_config)
    full.load_state_dict(state)
    return full.eval()
