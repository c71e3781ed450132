"""Load an exported folder back as the model of its task, for evaluation and the embedded server."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn
from transformers import AutoModelForSequenceClassification

from mg_heads.classification import SEQ_CLS_TASKS
from mg_heads.embedding import EmbeddingModel
from mg_heads.export import EXPORT_FILE


def load_for_task(path: str | Path, task: str | None = None, **hf_kwargs) -> nn.Module:
    """An EmbeddingModel for embed, the transformers ForSequenceClassification otherwise, in eval mode.

    `task` defaults to the one recorded in the folder's mg_export.json.
    """
    path = Path(path)
    if task is None:
        export_file = path / EXPORT_FILE
        if not export_file.is_file():
            raise ValueError(f"{path} has no {EXPORT_FILE}; pass task=")
        task = json.loads(export_file.read_text(encoding="utf-8"))["task"]
    if task == "embed":
        model = EmbeddingModel.from_pretrained(path, **hf_kwargs)
    elif task in SEQ_CLS_TASKS:
        model = AutoModelForSequenceClassification.from_pretrained(path, **hf_kwargs)
        if task != "classify" and model.config.num_labels != 1:
            raise ValueError(f"a {task} model has one output; {path} has {model.config.num_labels}")
    else:
        raise ValueError(f"task must be embed or one of {SEQ_CLS_TASKS}, not {task!r}")
    return model.eval()
