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
from mg_train.tasks import GENERATIVE, GenerativeModule, PoolingModule, get
from mg_train.tasks.base import TaskConfig

POOLING_METHODS = ("prepare", "build_model", "collate", "loss", "backend", "export")
GENERATIVE_METHODS = ("prepare", "prepare_tokenizer", "build_model", "preview", "trainer", "export")


def test_every_package_names_tasks_from_the_one_vocabulary():
    assert set(GENERATIVE_TASKS).isdisjoint(POOLING_TASKS) and set(ALL_TASKS) == {
        *GENERATIVE_TASKS,
        *POOLING_TASKS,
    }
    assert set(DATA_TASKS) <= set(ALL_TASKS) and set(POOLING_TASKS) <= set(DATA_TASKS)
    assert set(EVAL_TASKS) <= set(ALL_TASKS) and set(POOLING_TASKS) <= set(EVAL_TASKS)
    assert set(EXPORT_TASKS) == set(ALL_TASKS) and set(SEQ_CLS_TASKS) == set(POOLING_TASKS) - {"embed"}


@pytest.mark.parametrize("task", POOLING_TASKS + GENERATIVE)
def test_each_task_module_has_the_interface_of_its_kind(task):
    module = get(task)
    protocol, methods = (
        (GenerativeModule, GENERATIVE_METHODS) if task in GENERATIVE else (PoolingModule, POOLING_METHODS)
    )
    assert issubclass(module.Config, TaskConfig)
    for name in methods:
        wanted = list(inspect.signature(getattr(protocol, name)).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(module, name)).parameters) == wanted, (task, name)


def test_every_generative_method_but_ppo_has_a_module():
    assert set(GENERATIVE) == set(GENERATIVE_TASKS) - {"ppo"}
    with pytest.raises(ConfigError, match="task 'ner' is not one of classify, rm, embed, rerank, score, pt"):
        get("ner")
    with pytest.raises(ConfigError, match=r"task ppo: the pinned TRL \(1\.\d+\.\d+\) has no PPO trainer"):
        get("ppo")
