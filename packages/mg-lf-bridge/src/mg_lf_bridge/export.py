"""The model LLaMA-Factory trained, exported as mg-train exports its own (mg_heads.export): a merged *ForCausalLM
folder with mg_export.json and the `vllm serve` command, and for LoRA the adapter beside it.

LoRA adapters are merged here, in mg-train's environment (peft), onto the base model loaded unquantized: the
same merge a native run does. rm (a value head on a causal LM) and ppo are left in LLaMA-Factory's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Stages whose model is a causal LM that mg_heads exports (its generative tasks).
EXPORTED = ("pt", "sft", "dpo", "kto")
ADAPTER_CONFIG = "adapter_config.json"  # what peft saves beside an adapter


@dataclass(frozen=True)
class Trained:
    """What LLaMA-Factory trained and where it saved it."""

    stage: str
    finetuning_type: str
    base_model: str
    lf_dir: Path  # LLaMA-Factory's output_dir: the adapter or the full model, and the tokenizer
    max_length: int


def export(trained: Trained, run_dir: Path, training: dict):
    """mg_heads' Export of the trained model into run_dir/model (and run_dir/adapter for LoRA)."""
    from mg_train.console import quiet_model_loading, quiet_notices

    quiet_notices()  # before DeepSpeed (which peft imports when installed) says it picked the CPU
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mg_heads.export import export as write

    tokenizer = AutoTokenizer.from_pretrained(trained.lf_dir)  # as LLaMA-Factory saved it (its template)
    with quiet_model_loading(None):
        if (trained.lf_dir / ADAPTER_CONFIG).is_file():  # lora (or another peft method LLaMA-Factory has)
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(trained.base_model, dtype="auto")
            model = PeftModel.from_pretrained(base, trained.lf_dir)
        else:  # full or freeze: the whole model
            model = AutoModelForCausalLM.from_pretrained(trained.lf_dir, dtype="auto")
    return write(
        model,
        tokenizer,
        run_dir / "model",
        task=trained.stage,
        max_length=trained.max_length,
        training=training,
        adapter_dir=run_dir / "adapter" if (trained.lf_dir / ADAPTER_CONFIG).is_file() else None,
    )
