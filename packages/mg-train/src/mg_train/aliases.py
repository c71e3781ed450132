"""Names other tools use for our config keys, applied before anything else reads a config.

transformers TrainingArguments names are ours already (the task Config subclasses it). ALIASES maps LLaMA-Factory
YAML, TRL and sentence-transformers names, and the seed's spellings. The rest of this module is what a
LLaMA-Factory YAML needs beyond renaming (keys checked against LLaMA-Factory v0.9.5's hparams):

- `dataset` / `eval_dataset` name entries of `dataset_dir/dataset_info.json` (dataset_dir defaults to `data`,
  relative to the current directory, as in LLaMA-Factory) or files; a comma list (or a YAML list) becomes a
  list of sources, concatenated in order (mg_data reads an entry through mg_data.llamafactory's reference).
- values are translated where the meaning differs: warmup_ratio (transformers 5 reads a float < 1 in
  warmup_steps as the ratio), flash_attn, lora_target (comma list, `all`), train_on_prompt / mask_history
  (train_on), disable_shuffling (train_sampling_strategy), neat_packing (packing).
- NOT_HONOURED: keys we do not implement. At LLaMA-Factory's default value they change nothing and are
  dropped; any other value is refused with one line naming the key and what to do instead.
- NO_EFFECT: keys that mean nothing here whatever their value (caching, plotting, inference settings):
  dropped, and named in one note.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from typing import Any

from mg_train.errors import ConfigError

# alias -> our key
ALIASES: dict[str, str | None] = {
    # LLaMA-Factory
    "stage": "task",
    "dataset": "train_file",  # names in dataset_dir/dataset_info.json (or paths): resolved by `_lf_sources`
    "eval_dataset": "eval_file",
    "cutoff_len": "max_length",
    "lora_rank": "lora_r",
    "lora_target": "lora_target_modules",
    "flash_attn": "attn_implementation",  # values translated: FLASH_ATTN
    "warmup_ratio": "warmup_steps",  # transformers 5 dropped warmup_ratio; warmup_steps < 1 is a ratio
    "enable_liger_kernel": "use_liger_kernel",
    "max_prompt_length": None,  # TRL < 1.0's; refused below with what TRL 1.x does instead
    # LLaMA-Factory's RLHF arguments (dpo, kto): our keys are TRL's names
    "pref_beta": "beta",
    "pref_loss": "loss_type",
    "dpo_label_smoothing": "label_smoothing",
    "kto_chosen_weight": "desirable_weight",
    "kto_rejected_weight": "undesirable_weight",
    "neat_packing": "packing",  # LLaMA-Factory's packing without cross-attention: what our packing does
    # TRL / sentence-transformers / HF datasets
    "max_seq_length": "max_length",
    "model_name": "model_name_or_path",
    "model": "model_name_or_path",
    "train_dataset": "train_file",
    "validation_file": "eval_file",
    "test_file": "eval_file",
    "pooling_mode": "pooling",
    "normalize_embeddings": "normalize",
    # the seed
    "train_data": "train_file",
    "eval_data": "eval_file",
}

# LLaMA-Factory's `flash_attn` values -> transformers' attn_implementation (auto: transformers' own choice).
FLASH_ATTN = {
    "auto": None,
    "disabled": "eager",
    "sdpa": "sdpa",
    "fa2": "flash_attention_2",
    "fa3": "flash_attention_3",
}

# --- LLaMA-Factory keys we do not implement: {key: LLaMA-Factory's default}, grouped by the reason -----------

_MULTIMODAL = "multimodal inputs are not supported (mg-train trains text models); remove the key"
_LORA_VARIANT = (
    "only plain LoRA is supported (lora_rank, lora_alpha, lora_dropout, lora_target); remove the key"
)
_OPTIMIZER = (
    "LLaMA-Factory's optimizer switches are not supported; transformers' optim (and optim_target_modules) is, "
    "e.g. optim: galore_adamw or apollo_adamw"
)
_RAY = "Ray is not supported: train on several GPUs with mg-train --nproc-per-node N (torchrun)"
_HUB_TOKEN = "tokens are not read from the config: set HF_TOKEN or run `hf auth login`"
NOT_HONOURED: dict[str, tuple[Any, str]] = {
    # model loading
    "adapter_name_or_path": (
        None,
        "training on from an adapter is not supported: merge it into the model first",
    ),
    "adapter_folder": (None, "training on from an adapter is not supported: merge it into the model first"),
    "cache_dir": (None, "set HF_HOME (or HF_HUB_CACHE) instead"),
    "model_revision": ("main", "download that revision and give its folder as model_name_or_path"),
    "use_fast_tokenizer": (True, "the fast tokenizer is always used (its offsets mark the trained tokens)"),
    "resize_vocab": (False, "adding tokens is not supported: add them to the tokenizer and model first"),
    "split_special_tokens": (False, "special tokens are never split"),
    "add_tokens": (None, "adding tokens is not supported: add them to the tokenizer and model first"),
    "add_special_tokens": (None, "adding tokens is not supported: add them to the tokenizer and model first"),
    "new_special_tokens_config": (None, "adding tokens is not supported: add them to the tokenizer first"),
    "init_special_tokens": ("noise_init", "adding tokens is not supported: add them to the tokenizer first"),
    "rope_scaling": (None, "set rope scaling in the model's config.json"),
    "shift_attn": (False, "S^2-Attn (LongLoRA) is not supported"),
    "mixture_of_depths": (None, "mixture-of-depths is not supported"),
    "use_unsloth": (False, "unsloth is not supported (Liger kernels are on by default on CUDA)"),
    "use_unsloth_gc": (False, "unsloth is not supported; gradient_checkpointing: true is"),
    "moe_aux_loss_coef": (None, "the model config's router_aux_loss_coef is used: set it there"),
    "upcast_layernorm": (False, "upcasting layer norms is not supported"),
    "upcast_lmhead_output": (False, "upcasting the LM head is not supported"),
    "train_from_scratch": (False, "training from random weights is not supported"),
    "use_v1_kernels": (
        False,
        "LLaMA-Factory's kernels are not supported (Liger kernels are on by default on CUDA)",
    ),
    "use_kt": (False, "KTransformers is not supported"),
    "kt_weight_path": (None, "KTransformers is not supported"),
    "kt_expert_checkpoint_path": (None, "KTransformers is not supported"),
    "kt_use_lora_experts": (None, "KTransformers is not supported"),
    "kt_lora_expert_num": (None, "KTransformers is not supported"),
    "kt_lora_expert_intermediate_size": (None, "KTransformers is not supported"),
    "hf_hub_token": (None, _HUB_TOKEN),
    "ms_hub_token": (None, "ModelScope is not supported: give a local folder or a Hugging Face name"),
    "om_hub_token": (None, "Modelers is not supported: give a local folder or a Hugging Face name"),
    "quantization_method": ("bnb", "only bitsandbytes quantization (quantization_bit: 4 or 8) is supported"),
    "quantization_type": ("nf4", "4-bit quantization is always nf4"),
    "double_quantization": (True, "4-bit quantization always uses double quantization"),
    "quantization_device_map": (None, "quantized models are trained on the process's own device"),
    "pure_bf16": (False, "pure bf16 is not supported: bf16: true trains in mixed precision"),
    # multimodal
    "image_max_pixels": (768 * 768, _MULTIMODAL),
    "image_min_pixels": (32 * 32, _MULTIMODAL),
    "image_do_pan_and_scan": (False, _MULTIMODAL),
    "crop_to_patches": (False, _MULTIMODAL),
    "video_max_pixels": (256 * 256, _MULTIMODAL),
    "video_min_pixels": (16 * 16, _MULTIMODAL),
    "video_fps": (2.0, _MULTIMODAL),
    "video_maxlen": (128, _MULTIMODAL),
    "use_audio_in_video": (False, _MULTIMODAL),
    "audio_sampling_rate": (16000, _MULTIMODAL),
    "media_dir": (None, _MULTIMODAL),
    "freeze_vision_tower": (True, _MULTIMODAL),
    "freeze_multi_modal_projector": (True, _MULTIMODAL),
    "freeze_language_model": (False, _MULTIMODAL),
    # fine-tuning methods
    "freeze_trainable_layers": (2, "finetuning_type freeze is not supported (full or lora)"),
    "freeze_trainable_modules": ("all", "finetuning_type freeze is not supported (full or lora)"),
    "freeze_extra_modules": (None, "finetuning_type freeze is not supported (full or lora)"),
    "use_llama_pro": (False, "LLaMA Pro is not supported (full or lora)"),
    "oft_rank": (0, "OFT is not supported (full or lora)"),
    "oft_block_size": (32, "OFT is not supported (full or lora)"),
    "oft_target": ("all", "OFT is not supported (full or lora)"),
    "module_dropout": (0.0, "OFT is not supported (full or lora)"),
    "additional_target": (None, "training modules beside the LoRA adapters is not supported"),
    "create_new_adapter": (False, _LORA_VARIANT),
    "loraplus_lr_ratio": (None, _LORA_VARIANT),
    "loraplus_lr_embedding": (1e-6, _LORA_VARIANT),
    "use_rslora": (False, _LORA_VARIANT),
    "use_dora": (False, _LORA_VARIANT),
    "pissa_init": (False, _LORA_VARIANT),
    "pissa_iter": (16, _LORA_VARIANT),
    "pissa_convert": (False, _LORA_VARIANT),
    "use_galore": (False, _OPTIMIZER),
    "galore_target": ("all", _OPTIMIZER),
    "galore_rank": (16, _OPTIMIZER),
    "galore_update_interval": (200, _OPTIMIZER),
    "galore_scale": (2.0, _OPTIMIZER),
    "galore_proj_type": ("std", _OPTIMIZER),
    "galore_layerwise": (False, _OPTIMIZER),
    "use_apollo": (False, _OPTIMIZER),
    "apollo_target": ("all", _OPTIMIZER),
    "apollo_rank": (16, _OPTIMIZER),
    "apollo_update_interval": (200, _OPTIMIZER),
    "apollo_scale": (32.0, _OPTIMIZER),
    "apollo_proj": ("random", _OPTIMIZER),
    "apollo_proj_type": ("std", _OPTIMIZER),
    "apollo_scale_type": ("channel", _OPTIMIZER),
    "apollo_layerwise": (False, _OPTIMIZER),
    "apollo_scale_front": (False, _OPTIMIZER),
    "use_badam": (False, _OPTIMIZER),
    "badam_mode": ("layer", _OPTIMIZER),
    "badam_start_block": (None, _OPTIMIZER),
    "badam_switch_mode": ("ascending", _OPTIMIZER),
    "badam_switch_interval": (50, _OPTIMIZER),
    "badam_update_ratio": (0.05, _OPTIMIZER),
    "badam_mask_mode": ("adjacent", _OPTIMIZER),
    "badam_verbose": (0, _OPTIMIZER),
    "use_adam_mini": (False, _OPTIMIZER),
    "use_muon": (False, _OPTIMIZER),
    "use_dft_loss": (False, "only the cross-entropy loss is supported for sft"),
    "use_asft_loss": (False, "only the cross-entropy loss is supported for sft"),
    "asft_alpha": (0.1, "only the cross-entropy loss is supported for sft"),
    "use_eaft_loss": (False, "only the cross-entropy loss is supported for sft"),
    "eaft_alpha": (1.0, "only the cross-entropy loss is supported for sft"),
    "use_mca": (False, "Megatron-Core is not supported: mg-train --nproc-per-node N (torchrun, DeepSpeed)"),
    "use_hyper_parallel": (False, "HyperParallel is not supported: mg-train --nproc-per-node N (torchrun)"),
    "hyper_parallel_args": (None, "HyperParallel is not supported: mg-train --nproc-per-node N (torchrun)"),
    # RLHF
    "pref_bco_weight": (0.0, "the BCO term is not supported: loss_type: bco_pair trains BCO alone"),
    "ppo_buffer_size": (1, "ppo is not supported: use task: grpo"),
    "ppo_epochs": (4, "ppo is not supported: use task: grpo"),
    "ppo_score_norm": (False, "ppo is not supported: use task: grpo"),
    "ppo_target": (6.0, "ppo is not supported: use task: grpo"),
    "ppo_whiten_rewards": (False, "ppo is not supported: use task: grpo"),
    "ref_model": (None, "the reference model is the model being trained, as it starts (LoRA: the base)"),
    "ref_model_adapters": (None, "the reference model is the model being trained, as it starts"),
    "ref_model_quantization_bit": (None, "the reference model is the model being trained, as it starts"),
    "reward_model": (None, "ppo is not supported: task grpo takes a reward model in reward_funcs"),
    "reward_model_adapters": (None, "ppo is not supported: task grpo takes a reward model in reward_funcs"),
    "reward_model_quantization_bit": (None, "ppo is not supported: use task: grpo"),
    "reward_model_type": ("lora", "ppo is not supported: use task: grpo"),
    # data
    "streaming": (False, "streaming is not supported: every row is read and checked before training"),
    "buffer_size": (16384, "streaming is not supported: every row is read and checked before training"),
    "mix_strategy": ("concat", "datasets are concatenated in order (interleaving is not supported)"),
    "interleave_probs": (None, "datasets are concatenated in order (interleaving is not supported)"),
    "eval_num_beams": (None, "sft evaluation generates greedily (eval_generate, eval_max_new_tokens)"),
    "ignore_pad_token_for_loss": (True, "padding never counts in the loss"),
    "eval_on_each_dataset": (False, "the eval datasets are evaluated together"),
    "tool_format": (None, "tools are rendered by the chat template (the tokenizer's own, or template:)"),
    "default_system": (None, "a system prompt is not added: put it in the data (system column)"),
    "enable_thinking": (True, "the chat template renders thinking as it does by default"),
    "preserve_thinking": (False, "the chat template renders thinking as it does by default"),
    "tokenized_path": (
        None,
        "mg-train tokenizes in memory at each run and saves no tokenized data; check the data with "
        "`mg-data validate` and see the first samples as the model sees them at the start of a run",
    ),
    # training
    "ray_num_workers": (1, _RAY),
    "ray_init_kwargs": (None, _RAY),
    "ray_run_name": (None, _RAY),  # this and the next three: LLaMA-Factory 0.9.2-0.9.4
    "ray_storage_path": (None, _RAY),
    "resources_per_worker": (None, _RAY),
    "placement_strategy": (None, _RAY),
    "master_addr": (None, "give it as mg-train's --master-addr flag"),
    "master_port": (None, "give it as mg-train's --master-port flag"),
    "fp8": (False, "fp8 training is not supported (bf16 or fp16)"),
    "fp8_backend": ("auto", "fp8 training is not supported (bf16 or fp16)"),
    "fp8_enable_fsdp_float8_all_gather": (False, "fp8 training is not supported (bf16 or fp16)"),
    "enable_torch_profiler": (False, "LLaMA-Factory's profiler is not supported"),
    "profiler_output_dir": (None, "LLaMA-Factory's profiler is not supported"),
    "profile_modules": (None, "LLaMA-Factory's profiler is not supported"),
    "compute_accuracy": (
        False,
        "token accuracy is not computed (sft evaluates loss, perplexity, BLEU/ROUGE)",
    ),
    "early_stopping_steps": (None, "early stopping is not supported"),
    "use_swanlab": (False, "LLaMA-Factory's SwanLab switch is not supported: report_to: swanlab"),
    "predict_with_generate": (False, "sft evaluation generates with eval_generate (BLEU/ROUGE)"),
    "generation_max_length": (None, "sft evaluation generates eval_max_new_tokens tokens"),
    "generation_num_beams": (None, "sft evaluation generates greedily"),
}
# The profiler's other knobs and SwanLab's settings mean something only with the switch above on.
for _key in (
    "profiler_wait_steps",
    "profiler_warmup_steps",
    "profiler_active_steps",
    "profiler_repeat",
    "profiler_record_shapes",
    "profiler_profile_memory",
    "profiler_with_stack",
):
    NOT_HONOURED.setdefault(_key, (None, "LLaMA-Factory's profiler is not supported"))
for _key in (
    "swanlab_project",
    "swanlab_workspace",
    "swanlab_run_name",
    "swanlab_mode",
    "swanlab_api_key",
    "swanlab_logdir",
    "swanlab_lark_webhook_url",
    "swanlab_lark_secret",
):
    NOT_HONOURED.setdefault(
        _key, (None, "LLaMA-Factory's SwanLab switch is not supported: report_to: swanlab")
    )
# ... and are harmless wherever that switch is off: not refused then, whatever their value.
DEPENDS_ON = {
    **{
        k: "enable_torch_profiler"
        for k in NOT_HONOURED
        if k.startswith("profiler_") and k != "profiler_output_dir"
    },
    **{k: "use_swanlab" for k in NOT_HONOURED if k.startswith("swanlab_")},
}

# --- LLaMA-Factory keys that mean nothing here whatever their value: {reason: keys} --------------------------
NO_EFFECT: dict[str, tuple[str, ...]] = {
    "mg-train tokenizes in memory at each run": (
        "overwrite_cache",
        "preprocessing_num_workers",
        "preprocessing_batch_size",
        "data_shared_file_system",
    ),
    "the run log keeps every curve: mg-eval report draws them": (
        "plot_loss",
        "include_effective_tokens_per_second",
        "print_param_status",
    ),
    "inference and export settings: the model is exported to <output_dir>/model for mg-serve": (
        "infer_backend",
        "infer_dtype",
        "use_kv_cache",
        "offload_folder",
        "low_cpu_mem_usage",
        "vllm_maxlen",
        "vllm_gpu_util",
        "vllm_enforce_eager",
        "vllm_max_lora_rank",
        "vllm_config",
        "sglang_maxlen",
        "sglang_mem_fraction",
        "sglang_tp_size",
        "sglang_config",
        "sglang_lora_backend",
        "export_dir",
        "export_size",
        "export_device",
        "export_quantization_bit",
        "export_quantization_dataset",
        "export_quantization_nsamples",
        "export_quantization_maxlen",
        "export_legacy_format",
        "export_hub_model_id",
        "do_sample",
        "top_p",
        "top_k",
        "num_beams",
        "max_new_tokens",
        "repetition_penalty",
        "length_penalty",
        "skip_special_tokens",
        "generation_config",
        "sortish_sampler",
    ),
    "gradient checkpointing is gradient_checkpointing here, off unless set": (
        "disable_gradient_checkpointing",
        "use_reentrant_gc",
    ),
}
NO_EFFECT_REASON = {key: reason for reason, keys in NO_EFFECT.items() for key in keys}

# LLaMA-Factory keys of one stage that LLaMA-Factory ignores in the others: noted, not refused, elsewhere.
STAGE_KEYS = {
    "pref_beta",
    "pref_loss",
    "pref_ftx",
    "dpo_label_smoothing",
    "simpo_gamma",
    "kto_chosen_weight",
    "kto_rejected_weight",
    "ld_alpha",
    "packing",
    "neat_packing",
    "train_on_prompt",
    "mask_history",
}


def apply_aliases(
    mapping: dict[str, Any],
    *,
    source: str = "config",
    task: str | None = None,
    fields: set[str] | None = None,
    at: Callable[[str], str] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """`mapping` with every alias renamed to our key and LLaMA-Factory's values translated.

    `fields`: the keys of the task's configs; a key of ours is never treated as LLaMA-Factory's. `at(key)` says
    where a key was given, for errors; `notes` collects one-line notes for the console (keys dropped and why)."""
    where = at or (lambda key: source)
    fields = fields or set()
    notes = notes if notes is not None else []
    mapping = dict(mapping)
    _refuse_unsupported(mapping, fields, where)
    _translate_lf_values(mapping, task, fields, where, notes)
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # our key -> the key it was given as
    no_effect: dict[str, list[str]] = {}
    for key, value in mapping.items():
        if key == "max_prompt_length":
            raise ConfigError(
                f"{where(key)}: max_prompt_length is gone from TRL 1.x (pinned here): prompt and answer are cut "
                "together at max_length (cutoff_len), keeping the start; remove the key"
            )
        if key in ("dataset", "eval_dataset", "dataset_dir"):
            continue  # resolved together below
        if key in NO_EFFECT_REASON and key not in fields:
            no_effect.setdefault(NO_EFFECT_REASON[key], []).append(key)
            continue
        target = ALIASES.get(key) or key
        if key == "flash_attn":
            if value not in FLASH_ATTN:
                raise ConfigError(
                    f"{where(key)}: flash_attn must be one of {', '.join(FLASH_ATTN)}, not {value!r}"
                )
            value = FLASH_ATTN[value]
            if value is None:
                continue
        if target in out and out[target] != value:
            raise ConfigError(f"{where(key)}: {given[target]!r} and {key!r} both given with different values")
        out[target], given[target] = value, key
    for key, target in (("dataset", "train_file"), ("eval_dataset", "eval_file")):
        if mapping.get(key) is not None:
            if out.get(target) is not None:
                raise ConfigError(f"{where(key)}: {key!r} and {target!r} both given; keep one")
            out[target] = _lf_sources(mapping[key], mapping.get("dataset_dir"), key, where)
    if out.get("finetuning_type") == "freeze":
        raise ConfigError(
            f"{where('finetuning_type')}: finetuning_type freeze is not supported (full or lora)"
        )
    if out.get("finetuning_type") == "oft":
        raise ConfigError(f"{where('finetuning_type')}: finetuning_type oft is not supported (full or lora)")
    if no_effect:
        notes.append(
            "not used here: "
            + "; ".join(f"{', '.join(keys)} ({reason})" for reason, keys in no_effect.items())
        )
    return out


def _refuse_unsupported(mapping: dict[str, Any], fields: set[str], where) -> None:
    """One line for the first key we do not implement that is set to anything but LLaMA-Factory's default;
    the others change nothing and are dropped, in place."""
    for key, value in list(mapping.items()):
        if key not in NOT_HONOURED or key in fields:
            continue
        default, reason = NOT_HONOURED[key]
        switch = DEPENDS_ON.get(key)
        if (switch is not None and not mapping.get(switch)) or _is_default(value, default):
            del mapping[key]
            continue
        raise ConfigError(f"{where(key)}: {key}: {reason}")


def _is_default(value: Any, default: Any) -> bool:
    """Whether a value changes nothing in LLaMA-Factory either: its default, null, or empty/false where the
    default is null."""
    if value is None or value == default:
        return True
    return default is None and value in (False, "", [], {})


def _translate_lf_values(mapping: dict[str, Any], task: str | None, fields: set[str], where, notes) -> None:
    """LLaMA-Factory values whose meaning differs from the key they map to, in place."""
    if "warmup_ratio" in mapping:
        ratio = mapping["warmup_ratio"]
        try:
            ratio = float(ratio) if isinstance(ratio, str) else ratio
        except ValueError:
            ratio = None
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < 1:
            raise ConfigError(
                f"{where('warmup_ratio')}: warmup_ratio must be in [0, 1) (a fraction of the training steps), "
                f"not {mapping['warmup_ratio']!r}"
            )
        # transformers 5 reads warmup_steps < 1 as a fraction of the steps (ceil(total x ratio) warmup steps)
        mapping["warmup_ratio"] = float(ratio)
    for key in ("packing", "neat_packing"):
        if key in mapping and mapping[key] is None:  # LLaMA-Factory's default: pt packs, sft does not
            del mapping[key]
    if "neat_packing" in mapping and "packing" in mapping:
        # LLaMA-Factory: neat_packing implies packing; ours keeps packed samples apart either way.
        mapping["packing"] = bool(mapping.pop("packing")) or bool(mapping["neat_packing"])
        mapping.pop("neat_packing")
    prompt, history = mapping.pop("train_on_prompt", None), mapping.pop("mask_history", None)
    if prompt and history:
        raise ConfigError(f"{where('mask_history')}: mask_history and train_on_prompt cannot both be true")
    if prompt or history:
        key = "train_on_prompt" if prompt else "mask_history"
        if "train_on" not in fields:
            raise ConfigError(f"{where(key)}: {key} is for task sft (which tokens are trained), not {task}")
        train_on = "all" if prompt else "last_assistant"
        if "train_on" in mapping and mapping["train_on"] != train_on:
            raise ConfigError(f"{where(key)}: {key!r} and 'train_on' both given with different values")
        mapping["train_on"] = train_on
    if (
        "disable_shuffling" not in fields
        and "disable_shuffling" in mapping
        and mapping.pop("disable_shuffling")
    ):
        mapping.setdefault("train_sampling_strategy", "sequential")
    if "lora_rank" in mapping or "lora_target" in mapping:
        # LLaMA-Factory's LoRA defaults, for a config written with its LoRA names: lora (its default method),
        # alpha twice the rank, no dropout, every linear layer.
        mapping.setdefault("finetuning_type", "lora")
        rank = mapping.get("lora_rank", 8)
        if "lora_alpha" not in mapping and isinstance(rank, int) and not isinstance(rank, bool):
            mapping["lora_alpha"] = 2 * rank
        mapping.setdefault("lora_dropout", 0.0)
        if "lora_target" not in mapping and "lora_target_modules" not in mapping:
            mapping["lora_target"] = "all"
    for key in [k for k in mapping if k in STAGE_KEYS]:
        target = ALIASES.get(key) or key
        # KTOConfig has a loss_type of its own (kto, apo_zero_unpaired): LLaMA-Factory's kto ignores pref_loss.
        if (target not in fields or (task == "kto" and key == "pref_loss")) and task is not None:
            value = mapping.pop(key)
            if value not in (None, False, 0):
                notes.append(f"{key}: not used by task {task} (LLaMA-Factory uses it in other stages only)")


def _lf_sources(value: Any, dataset_dir: Any, key: str, where) -> str | list[str]:
    """LLaMA-Factory's `dataset: a,b` as sources mg_data reads: a reference to each entry of
    DATASET_DIR/dataset_info.json, or a file (DATASET_DIR/name, else name itself). One source stays a string."""
    names = _split(value)
    if not names:
        raise ConfigError(f"{where(key)}: {key} names no dataset")
    folder = "data" if dataset_dir is None else str(dataset_dir)
    if folder == "ONLINE" or folder.startswith("REMOTE:"):
        raise ConfigError(
            f"{where('dataset_dir')}: dataset_dir {folder}: hub datasets are not downloaded; download the folder "
            "and give its path"
        )
    info_path = os.path.join(folder, "dataset_info.json")
    entries = _dataset_info_names(info_path)
    sources: list[str] = []
    for name in names:
        if name in entries:
            from mg_data.llamafactory import dataset_ref

            sources.append(dataset_ref(folder, name))
        elif os.path.exists(os.path.join(folder, name)):
            sources.append(os.path.join(folder, name))
        elif os.path.exists(name):
            sources.append(name)
        elif entries or os.path.isfile(info_path):
            near = difflib.get_close_matches(name, sorted(entries), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"{where(key)}: {key}: {name!r} is not an entry of {info_path} (nor a file){hint}"
            )
        else:
            raise ConfigError(
                f"{where(key)}: {key}: {name!r}: there is no {info_path} (dataset_dir is {folder!r}, relative to "
                "the current directory) and no such file"
            )
    return sources[0] if len(sources) == 1 else sources


def _split(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _dataset_info_names(path: str) -> set[str]:
    """The entry names of a dataset_info.json (empty when there is none); what an entry says is mg_data's to read."""
    if not os.path.isfile(path):
        return set()
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path}: must hold a mapping of dataset names to entries")
    return set(info)
