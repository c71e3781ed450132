"""LoRA (peft) for the task models, with the head trained and saved in full.

Seq-cls tasks wrap the whole classifier (TaskType.SEQ_CLS) and put its head (`score`/`classifier`) in
`modules_to_save`: the head is new, so it must train in full and be saved. Embed wraps the backbone of the
EmbeddingModel (TaskType.FEATURE_EXTRACTION) in place. vLLM rejects adapters with modules_to_save, so
pooling exports always `merge` first. Generative tasks wrap the causal LM (TaskType.CAUSAL_LM) with
nothing in `modules_to_save`: its head (lm_head) is pretrained, so the adapter alone is servable by vLLM.
"""

from __future__ import annotations

import copy

from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from torch import nn

from mg_data.tasks import GENERATIVE_TASKS
from mg_heads.classification import SEQ_CLS_TASKS, head_module_name
from mg_heads.embedding import EmbeddingModel


def apply_lora(
    model: nn.Module,
    task: str,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: list[str] | str | None = None,
) -> nn.Module:
    """Add LoRA adapters. A seq-cls model or a causal LM (generative tasks) comes back as a PeftModel; an
    EmbeddingModel comes back itself with `backbone` now a PeftModel. `target_modules=None` uses peft's
    per-architecture default (q/v projections); "all-linear" targets every linear layer but the head."""
    if task == "embed":
        if not isinstance(model, EmbeddingModel):
            raise TypeError(f"task embed needs an EmbeddingModel, not {type(model).__name__}")
        config = LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=target_modules,
        )
        model.backbone = get_peft_model(model.backbone, config)
        return model
    if task in GENERATIVE_TASKS:
        # "all-linear" leaves out the output layer for causal LMs (peft), so lm_head is never a target.
        config = LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=target_modules,
        )
        return get_peft_model(model, config)
    if task not in SEQ_CLS_TASKS:
        raise ValueError(
            f"task must be embed, one of {SEQ_CLS_TASKS} or one of {GENERATIVE_TASKS}, not {task!r}"
        )
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        modules_to_save=[head_module_name(model)],
    )
    return get_peft_model(model, config)


def is_lora(model: nn.Module) -> bool:
    return isinstance(model, PeftModel) or (
        isinstance(model, EmbeddingModel) and isinstance(model.backbone, PeftModel)
    )


def merge(model: nn.Module, *, copy_first: bool = False) -> nn.Module:
    """Fold the adapters into the weights (the trained head replaces the original) and drop peft.

    peft merges in place, which leaves the given model unusable for further LoRA training; with
    `copy_first` the merge runs on a deep copy (twice the memory) and the given model stays as it is.
    A model without adapters is returned unchanged.
    """
    if copy_first and is_lora(model):
        model = copy.deepcopy(model)
    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    if isinstance(model, EmbeddingModel) and isinstance(model.backbone, PeftModel):
        model.backbone = model.backbone.merge_and_unload()
    return model
