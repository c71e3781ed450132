"""One module per task, each with the same small interface. `get(task)` returns it.

Pooling tasks (`PoolingModule`) give the loss and the batch function, and run.py trains them with its
PoolingTrainer. Generative methods (`GenerativeModule`) tokenize their own data and build their own trainer:
the HF Trainer over packed rows for pt/sft, TRL's trainers for dpo/kto/grpo; all mix in mg_train.guards.
Both kinds share prepare, build_model and export.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from mg_data.tasks import GENERATIVE_TASKS, POOLING_TASKS
from mg_train.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback

    from mg_train.args import TrainJob
    from mg_train.tasks.base import TaskConfig
    from mg_train.tasks.generative import GenerativeConfig

Batch = dict[str, Any]  # what `collate` makes of a list of normalized examples, and `loss` reads
TaskData = Any  # what `prepare` learned from the data (labels, problem type, pooling): the task's own class


class TaskModule(Protocol):
    """What every task module provides, in the order a run uses it."""

    # The task's transformers.TrainingArguments subclass: task fields + the defaults that differ.
    Config: type[TaskConfig]

    def prepare(self, job: TrainJob, train: list[dict], eval_: list[dict]) -> TaskData:
        """What the data says about the model (labels, problem type); raises ConfigError on a mismatch."""
        ...

    def build_model(
        self, job: TrainJob, data: TaskData, tokenizer: PreTrainedTokenizerBase
    ) -> torch.nn.Module:
        """The model to train (before LoRA, which run.py adds)."""
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


class PoolingModule(TaskModule, Protocol):
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


class GenerativeModule(TaskModule, Protocol):
    Config: type[GenerativeConfig]

    def prepare_tokenizer(self, job: TrainJob, tokenizer: PreTrainedTokenizerBase) -> str | None:
        """Set what rendering needs (the chat template); returns a note for the console, or None."""
        ...

    def preview(
        self, job: TrainJob, data: TaskData, tokenizer: PreTrainedTokenizerBase, examples: list[dict]
    ) -> list[dict]:
        """The examples as the model sees them: [{"segments": [{"text", "trained"}], "label"}]."""
        ...

    def trainer(
        self,
        job: TrainJob,
        data: TaskData,
        *,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        train: list[dict],
        eval_: list[dict],
        callbacks: list[TrainerCallback],
        log: Callable[[str], None],
    ) -> Trainer:
        """The trainer over this method's data, with mg_train.guards mixed in; `log` prints a line for the
        user (what was dropped or truncated while tokenizing)."""
        ...


# The generative methods mg-train trains itself (mg_data.tasks.GENERATIVE_TASKS but ppo: see `get`).
GENERATIVE: tuple[str, ...] = tuple(t for t in GENERATIVE_TASKS if t != "ppo")
TASKS: tuple[str, ...] = POOLING_TASKS + GENERATIVE


def get(task: str) -> PoolingModule | GenerativeModule:
    if task == "ppo":
        import trl

        # TRL 1.x removed its PPOTrainer (PPO needs a value model and four models in memory); GRPO trains
        # from the same reward functions or reward model with no value model.
        raise ConfigError(
            f"task ppo: the pinned TRL ({trl.__version__}) has no PPO trainer; use task: grpo with the same "
            "reward (reward_funcs: a function or a reward model trained by mg-train's rm task)",
            key="task",
        )
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}", key="task")
    module = import_module(f"mg_train.tasks.{task}")
    return cast(GenerativeModule, module) if task in GENERATIVE else cast(PoolingModule, module)


def is_generative(task: str) -> bool:
    return task in GENERATIVE
