"""The LLaMA-Factory releases the bridge runs, and the argument names that are not in all of them.

The releases are mg-env's `llamafactory` profile's (each has a committed lock). The names the translation
writes (stage, finetuning_type, lora_*, dataset, dataset_dir, template, cutoff_len, max_samples, val_size,
packing, neat_packing, train_on_prompt, mask_history, pref_*, dpo_label_smoothing, simpo_gamma, kto_*_weight,
flash_attn, enable_liger_kernel, disable_gradient_checkpointing, quantization_bit, trust_remote_code) are
spelled the same in the hparams of 0.9.2 to 0.9.5; the ones below came later.
"""

from __future__ import annotations

from mg_env import PROFILES

PROFILE = "llamafactory"
VERSIONS: tuple[str, ...] = PROFILES[PROFILE].versions
DEFAULT_VERSION: str = PROFILES[PROFILE].default_version

# LLaMA-Factory argument -> the first release whose hparams have it (0.9.2 is the oldest we run).
SINCE: dict[str, str] = {
    "ld_alpha": "0.9.3",  # finetuning_args.py: LD-DPO's weight of the verbose part of a response
}


def release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def has_argument(version: str, name: str) -> bool:
    """Whether LLaMA-Factory `version` knows argument `name` (of those the translation writes)."""
    first = SINCE.get(name)
    return first is None or release(version) >= release(first)
