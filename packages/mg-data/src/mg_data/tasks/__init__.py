"""Task schemas: each module turns a row in any layout it reads into the task's normalized example,
or raises RowError. `normalize(row, warn)`; `warn(message)` reports a tolerated oddity (once per file)."""

from __future__ import annotations

from types import ModuleType
from typing import Literal, get_args

from mg_data.errors import DataError
from mg_data.tasks import classify, embed, grpo, kto, pairwise, pt, rerank, score, sft

# The task vocabulary of the whole project, defined once (mg-train, mg-eval and mg-heads use these names).
# Generative tasks train a language model; pooling tasks train a head over pooled hidden states.
GenerativeTask = Literal["pt", "sft", "dpo", "kto", "ppo", "grpo"]
PoolingTask = Literal["classify", "rm", "embed", "rerank", "score"]
Task = Literal[GenerativeTask, PoolingTask]
GENERATIVE_TASKS: tuple[GenerativeTask, ...] = get_args(GenerativeTask)
POOLING_TASKS: tuple[PoolingTask, ...] = get_args(PoolingTask)
ALL_TASKS: tuple[Task, ...] = GENERATIVE_TASKS + POOLING_TASKS

# The tasks whose rows mg-data reads (names from Task), and the schema that reads them.
TASKS: dict[str, ModuleType] = {
    "pt": pt,
    "sft": sft,
    "classify": classify,
    "rm": pairwise,
    "dpo": pairwise,
    "kto": kto,
    "grpo": grpo,
    "embed": embed,
    "rerank": rerank,
    "score": score,
}


def get(name: str) -> ModuleType:
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None
