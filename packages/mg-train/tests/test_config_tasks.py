"""The task vocabulary (mg_data.tasks, defined once) and the TaskModule interface every task module has."""

from __future__ import annotations

import inspect

import pytest

from mg_data.tasks import ALL_TASKS, GENERATIVE_TASKS, POOLING_TASKS
from mg_data.tasks import TASKS as DATA_TASKS
from mg_eval.evaluate import TASKS as EVAL_TASKS
from mg_heads.classification import SEQ_CLS_TASKS
from mg_heads.export import TASKS as EXPORT_TASKS
from mg_train.errors import ConfigError
from mg_train.tasks import TaskModule, get
from mg_train.tasks.base import PoolingConfig

METHODS = ("prepare", "build_model", "collate", "loss", "backend", "export")


def test_every_package_names_tasks_from_the_one_vocabulary():
    assert set(GENERATIVE_TASKS).isdisjoint(POOLING_TASKS) and set(ALL_TASKS) == {
        *GENERATIVE_TASKS,
        *POOLING_TASKS,
    }
    assert set(DATA_TASKS) <= set(ALL_TASKS) and set(POOLING_TASKS) <= set(DATA_TASKS)
    assert set(EVAL_TASKS) <= set(ALL_TASKS) and set(POOLING_TASKS) <= set(EVAL_TASKS)
    assert tuple(EXPORT_TASKS) == POOLING_TASKS and set(SEQ_CLS_TASKS) == set(POOLING_TASKS) - {"embed"}


@pytest.mark.parametrize("task", POOLING_TASKS)
def test_each_task_module_has_the_task_module_interface(task):
    module = get(task)
    assert issubclass(module.Config, PoolingConfig)
    for name in METHODS:
        wanted = list(inspect.signature(getattr(TaskModule, name)).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(module, name)).parameters) == wanted, (task, name)


def test_get_refuses_a_task_without_a_module():
    with pytest.raises(ConfigError, match="task 'sft' is not one of classify, rm, embed, rerank, score"):
        get("sft")
