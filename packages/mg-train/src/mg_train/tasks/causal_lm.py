"""The language-modelling trainer of pt and sft: tokenized samples, packed into full rows that keep samples apart
(mg_heads.packing) or padded one per row; the causal LM's own loss (token mean over the trained tokens);
evaluation = loss and perplexity, and for sft generation on the eval conversations scored by mg-eval.

TRL's SFTTrainer packs with restarted position_ids only, which transformers 5 does not isolate under sdpa
(../shared/gpu/README.md); so pt/sft tokenize and pack here and train with the HF Trainer."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from transformers import Trainer

from mg_heads.packing import FLAT_ATTN_IMPLEMENTATIONS, Sample, collate_packed, collate_padded, pack
from mg_train.guards import Guards


class Rows:
    """The training items: packed rows (lists of samples) or single samples, as a map-style dataset."""

    def __init__(self, samples: list[Sample], *, packed: bool, row_length: int):
        self.packed = packed
        if packed:
            order = pack([len(s.input_ids) for s in samples], row_length)
            self.items: list = [[samples[i] for i in row] for row in order]
        else:
            self.items = samples

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]

    def tokens(self) -> int:
        rows = self.items if self.packed else [[s] for s in self.items]
        return sum(len(s.input_ids) for row in rows for s in row)


def collator(tokenizer, model, *, packed: bool) -> Callable[[list], dict]:
    """The batch function; every batch also carries `token_mask` [batch, length] (1 = a real token), which
    LMTrainer takes out before the forward (the MoE router loss counts real tokens only)."""
    pad = tokenizer.pad_token_id
    if not packed:

        def padded(samples: list[Sample]) -> dict:
            batch = collate_padded(samples, pad_token_id=pad)
            return {**batch, "token_mask": batch["attention_mask"]}

        return padded
    attn = getattr(model.config, "_attn_implementation", None) or "sdpa"

    def packed_rows(rows: list[list[Sample]]) -> dict:
        batch = collate_packed(rows, pad_token_id=pad, attn_implementation=attn)
        lengths = [sum(len(s.input_ids) for s in row) for row in rows]
        if attn in FLAT_ATTN_IMPLEMENTATIONS:
            # flash attention finds the samples from the restarted position_ids, but transformers skips that
            # when it builds a KV cache, which it does in training too unless told not to.
            batch["use_cache"] = False
            lengths = [sum(lengths)]
        width = batch["input_ids"].shape[1]
        batch["token_mask"] = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
        return batch

    return packed_rows


class RouterLoss:
    """The MoE load-balancing loss over the real tokens of a batch.

    transformers computes it inside the forward from the attention mask, read as [batch, length]: the 4D
    document mask of packed rows breaks that (a shape error), and packing's padding must not count. So the
    model's own output switch stays off, the router logits are recorded with hooks on the modules transformers
    itself records them from, and the model's own `load_balancing_loss_func` runs on a 2D mask of real tokens."""

    def __init__(self, causal_lm):
        import sys

        decoder = causal_lm.model
        recorder = decoder._can_record_outputs["router_logits"]
        self.function = sys.modules[type(causal_lm).__module__].load_balancing_loss_func
        self.experts, self.top_k = causal_lm.num_experts, causal_lm.num_experts_per_tok
        self.coef = causal_lm.router_aux_loss_coef
        self.recording = False
        self.logits: list[torch.Tensor] = []
        causal_lm.config.output_router_logits = False

        def record(module, inputs, output):
            if self.recording:
                self.logits.append(output[recorder.index] if isinstance(output, tuple) else output)

        for module in decoder.modules():
            if isinstance(module, recorder.target_class):
                module.register_forward_hook(record)

    @classmethod
    def of(cls, model) -> RouterLoss | None:
        from peft import PeftModel

        from mg_train.tasks.generative import moe_router

        causal_lm = model.get_base_model() if isinstance(model, PeftModel) else model
        return cls(causal_lm) if moe_router(causal_lm.config) else None

    def loss(self, token_mask: torch.Tensor) -> torch.Tensor:
        logits, self.logits = tuple(self.logits), []
        return self.function(logits, self.experts, self.top_k, token_mask)


class LMTrainer(Guards, Trainer):
    """HF Trainer + the guards; logs the MoE router's auxiliary loss; evaluates loss, perplexity and (sft)
    generation metrics through `generate_eval`."""

    def __init__(self, *args, eval_samples: list[Sample], generate_eval: Callable | None = None, **kwargs):
        # The HF Trainer checks that eval data exists when an eval strategy is set; `evaluate` reads it here.
        kwargs["eval_dataset"] = eval_samples or None
        super().__init__(*args, **kwargs)
        self.pad_token_id = kwargs["processing_class"].pad_token_id
        self.eval_samples, self.generate_eval = eval_samples, generate_eval
        self.router = RouterLoss.of(self.model)
        self._aux: list[float] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        token_mask = inputs.pop("token_mask", None)
        if self.router is None or token_mask is None:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        self.router.recording = True
        try:
            loss, outputs = super().compute_loss(
                model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
        finally:
            self.router.recording = False
        aux = self.router.loss(token_mask)
        self._aux.append(float(aux.detach()))
        loss = loss + self.router.coef * aux
        self.check_loss(loss)
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if self._aux and "loss" in logs:  # a training log line: the router loss over the same steps
            logs["router_aux_loss"] = sum(self._aux) / len(self._aux)
            self._aux = []
        super().log(logs, *args, **kwargs)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        loss = self._eval_loss()
        metrics = {f"{metric_key_prefix}_loss": loss, f"{metric_key_prefix}_perplexity": _perplexity(loss)}
        if self.generate_eval is not None:
            model = self.accelerator.unwrap_model(self.model)
            for key, value in self.generate_eval(model).items():
                metrics[f"{metric_key_prefix}_{key}"] = float(value)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    @torch.no_grad()
    def _eval_loss(self) -> float:
        """Token mean of the loss over every trained eval token (batches of different sizes weigh by tokens)."""
        model = self.model
        assert model is not None
        was_training = model.training
        model.eval()
        total, tokens = 0.0, 0
        size, pad = self.args.per_device_eval_batch_size, self.pad_token_id
        for i in range(0, len(self.eval_samples), size):
            batch = self._prepare_inputs(collate_padded(self.eval_samples[i : i + size], pad_token_id=pad))
            n = int((batch["labels"][:, 1:] != -100).sum())
            if n:
                total += float(model(**batch).loss) * n
                tokens += n
        model.train(was_training)
        return total / tokens if tokens else math.nan


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else math.inf
