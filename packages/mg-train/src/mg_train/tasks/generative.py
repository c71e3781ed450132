"""What the generative methods (pt, sft, dpo, kto, grpo) share: the Config defaults that differ from TRL's and
transformers', the causal LM they train (LoRA and QLoRA, MoE router loss), the chat template, the preview of
samples with their trained spans, and the export."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mg_train.tasks.base import TaskConfig


@dataclass
class GenerativeConfig(TaskConfig):
    """TaskConfig with the defaults every generative method shares, on any machine (CPU included)."""

    # TRL 1.16's configs turn bf16 and gradient checkpointing on by default: on a CPU bf16 is ~14x slower and
    # checkpointing only costs time. Decided per machine instead (None = bf16 where CUDA supports it).
    bf16: bool | None = field(  # type: ignore[assignment]
        default=None,
        metadata={"help": "bf16 mixed precision; null: on where the CUDA GPU supports it, off on CPU."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Trade compute for memory (recompute activations)."}
    )
    # Liger's fused kernels (RMSNorm, RoPE, SwiGLU, linear + cross-entropy) cut memory and time on CUDA.
    use_liger_kernel: bool | None = field(  # type: ignore[assignment]
        default=None,
        metadata={"help": "Liger kernels; null: on when liger-kernel is installed and a CUDA GPU is used."},
    )

    def __post_init__(self):
        if self.bf16 is None or self.use_liger_kernel is None:
            import torch

            cuda = torch.cuda.is_available() and not getattr(self, "use_cpu", False)
            if self.bf16 is None:
                self.bf16 = bool(cuda and torch.cuda.is_bf16_supported() and not self.fp16)
            if self.use_liger_kernel is None:
                self.use_liger_kernel = cuda and _installed("liger_kernel")
        super().__post_init__()


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


# --- the model -------------------------------------------------------------------------------------------


def build_causal_lm(job, *, log=None):
    """The base model as a *ForCausalLM, in the dtype it was saved in on GPU (fp32 on CPU, where half precision
    is slow), 4-bit when QLoRA is asked for, with the MoE router's auxiliary loss switched on."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    path = job.model.model_name_or_path
    config = AutoConfig.from_pretrained(path)
    kwargs: dict[str, Any] = {}
    if job.model.attn_implementation:
        kwargs["attn_implementation"] = job.model.attn_implementation
    if job.model.quantization_bit:
        kwargs["quantization_config"] = quantization_config(job)
        kwargs["dtype"] = torch.bfloat16
    elif torch.cuda.is_available() and not job.train.use_cpu:
        kwargs["dtype"] = "auto"
    else:
        kwargs["dtype"] = torch.float32
    if moe_router(config):
        # Without it the router is trained by the LM loss alone and collapses onto few experts; transformers
        # adds router_aux_loss_coef x the load-balancing loss to the loss (and reports it as aux_loss). pt/sft
        # compute that loss themselves over packed rows (causal_lm.RouterLoss) and switch this off again.
        config.output_router_logits = True
    model = AutoModelForCausalLM.from_pretrained(path, config=config, **kwargs)
    if job.model.quantization_bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(job.train.gradient_checkpointing)
        )
    return model


def moe_router(config) -> bool:
    """Whether the model routes tokens to experts (Mixtral, Qwen2-MoE, Qwen3-MoE, ... shapes)."""
    return hasattr(config, "output_router_logits") and hasattr(config, "router_aux_loss_coef")


def quantization_config(job):
    """bitsandbytes 4-bit (QLoRA: NF4, double quantization, bf16 compute) or 8-bit; ModelArgs checked that
    CUDA, bitsandbytes and LoRA are there."""
    import torch
    from transformers import BitsAndBytesConfig

    if job.model.quantization_bit == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


# --- the chat template and the preview --------------------------------------------------------------------


def prepare_tokenizer(job, tokenizer) -> str | None:
    """The chat template the conversations are rendered with (the tokenizer's own, else `template:`). Returns
    a note for the console, or None."""
    from mg_train.chat_template import ensure_chat_template

    return ensure_chat_template(tokenizer, job.data.template)


def segments(tokenizer, input_ids: list[int], labels: list[int]) -> list[dict]:
    """The sample as the model sees it, cut where training starts or stops: [{"text", "trained"}]."""
    out: list[dict] = []
    start = 0
    for i in range(1, len(input_ids) + 1):
        if i == len(input_ids) or (labels[i] != -100) != (labels[start] != -100):
            text = tokenizer.decode(input_ids[start:i], skip_special_tokens=False)
            out.append({"text": text, "trained": labels[start] != -100})
            start = i
    return out


# --- the export -------------------------------------------------------------------------------------------


def export(model, tokenizer, out_dir, job, data, training: dict):
    """A plain *ForCausalLM folder (LoRA merged) at out_dir, and for LoRA runs the adapter beside it."""
    from pathlib import Path

    from mg_heads.export import export as write
    from mg_heads.lora import is_lora

    adapter = Path(out_dir).parent / "adapter" if is_lora(model) else None
    return write(
        model,
        tokenizer,
        out_dir,
        task=job.task,
        max_length=job.model.max_length,
        training=training,
        adapter_dir=adapter,
    )
