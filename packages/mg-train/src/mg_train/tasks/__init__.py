"""One module per task. Each defines:

Config                      the task's transformers.TrainingArguments subclass (task fields + defaults)
prepare(job, train, eval)   -> TaskData: what the data says about the model (labels, problem type)
build_model(job, data, tokenizer) -> the model to train
collate(tokenizer, job, data) -> batch function over normalized examples (mg-data's task schema)
loss(model, batch, config)  -> scalar loss
backend(model, tokenizer, job, data) -> an mg-eval backend over the in-training model
export(model, tokenizer, out_dir, job, data) -> the vLLM-ready folder
"""

from __future__ import annotations

from importlib import import_module

from mg_train.config import TASKS


def get(task: str):
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")
    return import_module(f"mg_train.tasks.{task}")
