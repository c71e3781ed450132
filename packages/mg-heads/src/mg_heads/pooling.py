"""Pool token states [B, T, H] into one vector per sequence [B, H].

Every mode reads positions from `attention_mask`, never from token ids: a pad id search breaks when
pad == eos, and the mask is what sentence-transformers and vLLM pool by as well.

- "cls":  the state at position 0. Assumes right padding (encoders pad right; with left padding position
          0 of a short row is a pad token), which `pool` checks.
- "mean": the mean of the states whose mask is 1.
- "last": the state at the last position whose mask is 1 in each row. Correct with left and right padding
          and when pad == eos.

Defaults (`default_pooling`): encoders "mean", the sentence-transformers default for models trained with
it; decoders "last", the only position of a causal model that has seen the whole text. vLLM's defaults
differ per architecture and version (BertModel CLS, Qwen2Model MEAN in 0.8.5 and LAST in 0.33), so every
embedding folder we write states its pooling in 1_Pooling/config.json and never relies on them.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

POOLING_MODES = ("cls", "mean", "last")


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index [B] of the last position whose mask is 1 in each row (0 for an all-zero row)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    # argmax of position * mask: the largest attended position, whatever side the padding is on.
    return (positions * attention_mask.to(positions.dtype)).argmax(dim=-1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool `hidden` [B, T, H] to [B, H] with `mode` ("cls", "mean" or "last"); see the module docstring."""
    if mode == "cls":
        if not bool(attention_mask[:, 0].all()):
            raise ValueError("cls pooling reads position 0, which is padding here: pad on the right")
        return hidden[:, 0]
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        # The clamp is sentence-transformers' (1e-9), so an all-padding row gives zeros, not NaN.
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    if mode == "last":
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_token_index(attention_mask).to(hidden.device)]
    raise ValueError(f"pooling must be one of {POOLING_MODES}, not {mode!r}")


def is_encoder(config: PretrainedConfig) -> bool:
    """True for bidirectional encoders (BERT, RoBERTa, XLM-R, ModernBERT, ...): the model types
    transformers has a masked-LM head for. Decoder LMs (Qwen2/3, Llama, Mistral, ...) are not among them."""
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def default_pooling(config: PretrainedConfig) -> str:
    """ "mean" for encoders (sentence-transformers' default), "last" for decoders."""
    return "mean" if is_encoder(config) else "last"
