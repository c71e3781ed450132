"""One module per task, each with the same small interface: `TaskModule`. `get(task)` returns it.

The generative methods (sft, dpo, ...) will be modules with this interface too, wrapping TRL's trainers.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from mg_data.tasks import POOLING_TASKS
from mg_train.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

    from mg_train.args import TrainJob
    from mg_train.tasks.base import PoolingConfig

Batch = dict[str, Any]  # what `collate` makes of a list of normalized examples, and `loss` reads
TaskData = Any  # what `prepare` learned from the data (labels, problem type, pooling): the task's own class


class TaskModule(Protocol):
    """What a task module provides, in the order a run uses it."""

    # The task's transformers.TrainingArguments subclass: task fields + the defaults that differ.
    Config: type[PoolingConfig]

    def prepare(self, job: TrainJob, train: list[dict], eval_: list[dict]) -> TaskData:
        """What the data says about the model (labels, problem type); raises ConfigError on a mismatch."""
        ...

    def build_model(
        self, job: TrainJob, data: TaskData, tokenizer: PreTrainedTokenizerBase
    ) -> torch.nn.Module:
        """The model to train (before LoRA, which run.py adds)."""
        ...

    def collate(
        self, tokenizer: PreTrainedTokenizerBase, job: TrainJob, data: TaskData
    ) -> Callable[[list[dict]], Batch]:
        """The batch function over normalized examples (mg-data's task schema)."""
        ...

    def loss(self, model: torch.nn.Module, batch: Batch, config: Any) -> torch.Tensor:
        """The scalar training loss of one batch; `config` is the task's Config."""
        ...

    def backend(
        self, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, job: TrainJob, data: TaskData
    ) -> Any:
        """An mg-eval backend over the in-training model (the same code as `mg-eval run`)."""
        ...

    def export(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        out_dir: str | Path,
        job: TrainJob,
        data: TaskData,
        training: dict,
    ) -> Any:
        """Write the vLLM-ready folder; returns what mg_heads.export wrote."""
        ...


def get(task: str) -> TaskModule:
    if task not in POOLING_TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(POOLING_TASKS)}", key="task")
    return cast(TaskModule, import_module(f"mg_train.tasks.{task}"))
