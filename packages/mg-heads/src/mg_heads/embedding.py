"""EmbeddingModel: a base transformer (BertModel, Qwen2Model, LlamaModel, ...) + pooling (+ L2 normalize).

Saved in the sentence-transformers layout, which both `SentenceTransformer(dir)` and vLLM's embed runner
load as it is: the base model at the root (config.json architectures ["Qwen2Model"] etc.), modules.json,
1_Pooling/config.json with the pooling stated, 2_Normalize when normalized.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from mg_heads import sbert
from mg_heads.pooling import POOLING_MODES, default_pooling, pool

if TYPE_CHECKING:
    from peft import PeftModel


class EmbeddingModel(nn.Module):
    """`forward(input_ids, attention_mask) -> [B, H]`: pooled last hidden states, L2-normalized if `normalize`."""

    # What the HF Trainer checks before enabling activation (gradient) checkpointing.
    supports_gradient_checkpointing = True

    def __init__(self, backbone: PreTrainedModel, pooling: str, normalize: bool = True):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, not {pooling!r}")
        # A PeftModel while LoRA adapters are on it (mg_heads.lora.apply_lora), until lora.merge.
        self.backbone: PreTrainedModel | PeftModel = backbone
        self.pooling = pooling
        self.normalize = normalize
        # max_seq_length of the sentence-transformers folder it was loaded from, if any.
        self.max_length: int | None = None

    @property
    def config(self) -> PretrainedConfig:
        return self.backbone.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> torch.Tensor:
        # position_ids are left to the backbone: with left padding a RoPE decoder sees every real token
        # shifted by the same offset, which leaves its attention (relative positions) unchanged, and
        # encoders with absolute positions (some of which, like RoBERTa, offset them) pad right.
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        pooled = pool(out.last_hidden_state, attention_mask, self.pooling)
        return F.normalize(pooled, p=2, dim=-1) if self.normalize else pooled

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        pooling: str | None = None,
        normalize: bool | None = None,
        **hf_kwargs,
    ) -> EmbeddingModel:
        """Load a sentence-transformers folder (pooling and Normalize from its modules.json) or any
        transformers folder (a causal LM or seq-cls folder loads its base model through AutoModel).
        `pooling`/`normalize` override what the folder says; without one, `default_pooling` and True."""
        path = Path(path)
        layout = sbert.read_layout(path) if sbert.is_sbert_folder(path) else None
        backbone_dir = path / layout.transformer_path if layout else path
        backbone = AutoModel.from_pretrained(backbone_dir, **hf_kwargs)
        if pooling is None:
            pooling = layout.pooling if layout else default_pooling(backbone.config)
        if normalize is None:
            normalize = layout.normalize if layout else True
        model = cls(backbone, pooling=pooling, normalize=normalize)
        model.max_length = layout.max_length if layout else None
        return model

    def save_pretrained(
        self,
        out_dir: str | Path,
        tokenizer: PreTrainedTokenizerBase | None = None,
        max_length: int | None = None,
        matryoshka_dims: list[int] | None = None,
    ) -> Path:
        """Write the sentence-transformers layout into `out_dir` (created if missing).

        `max_length` becomes sentence_bert_config.json's max_seq_length (default: the loaded folder's).
        `matryoshka_dims` go to config.json as `matryoshka_dimensions` (vLLM allows the `dimensions`
        request parameter only then) and to config_sentence_transformers.json.
        """
        from peft import PeftModel

        if isinstance(self.backbone, PeftModel):
            raise ValueError("the backbone still has LoRA adapters: mg_heads.lora.merge(model) first")
        hidden_size = self.config.hidden_size
        if matryoshka_dims and not all(0 < d <= hidden_size for d in matryoshka_dims):
            raise ValueError(f"matryoshka_dims {matryoshka_dims} must lie in 1..{hidden_size}")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(out_dir)
        if matryoshka_dims:
            config_file = out_dir / "config.json"
            config = json.loads(config_file.read_text(encoding="utf-8"))
            config["matryoshka_dimensions"] = sorted(matryoshka_dims, reverse=True)
            config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if tokenizer is not None:
            tokenizer.save_pretrained(out_dir)
        sbert.write_layout(
            out_dir,
            hidden_size=hidden_size,
            pooling=self.pooling,
            normalize=self.normalize,
            max_length=max_length if max_length is not None else self.max_length,
            versions=_versions(),
            matryoshka_dims=sorted(matryoshka_dims, reverse=True) if matryoshka_dims else None,
        )
        return out_dir

    # Passthroughs the HF Trainer and peft call on the model they are given. transformers 5.x renamed
    # gradient checkpointing to activation checkpointing (the Trainer calls activation_checkpointing_enable
    # when the model has it); the old names stay until transformers 6, each forwarding to its namesake.
    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        self.backbone.activation_checkpointing_enable(
            activation_checkpointing_kwargs=activation_checkpointing_kwargs,
            every_n_layers=every_n_layers,
            offload=offload,
        )

    def activation_checkpointing_disable(self) -> None:
        self.backbone.activation_checkpointing_disable()

    @property
    def is_activation_checkpointing(self) -> bool:
        return self.backbone.is_activation_checkpointing

    def gradient_checkpointing_enable(
        self, gradient_checkpointing_kwargs: dict | None = None, **kwargs
    ) -> None:
        self.backbone.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=gradient_checkpointing_kwargs, **kwargs
        )

    def gradient_checkpointing_disable(self) -> None:
        self.backbone.gradient_checkpointing_disable()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.backbone.is_gradient_checkpointing

    def enable_input_require_grads(self) -> None:
        # Needed for gradient checkpointing with frozen embeddings (LoRA).
        self.backbone.enable_input_require_grads()

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()


def _versions() -> dict[str, str]:
    import transformers

    from mg_heads import __version__

    return {"mg_heads": __version__, "transformers": transformers.__version__, "pytorch": torch.__version__}
