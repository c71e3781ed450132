"""A local model: a folder (loaded lazily with the loader the method needs) or a model already in memory
with its tokenizer (the model being trained). Both go through the same code: mg-heads' tokenization
(`encode_texts`, the pad == eos rule), `render` for conversations, batched forwards on CPU or GPU. So
`mg-eval run --model DIR` on an exported folder gives the metrics mg-train computed during training.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm


class MissingExtra(RuntimeError):
    """A local model needs torch and mg-heads: the `models` extra is not installed."""


def _torch():
    try:
        import torch
        import transformers  # noqa: F401

        import mg_heads.tokenize  # noqa: F401
    except ImportError as e:
        raise MissingExtra(
            f"evaluating a local model needs the models extra ({e.name or e} is missing): "
            "pip install 'mg-eval[models]'"
        ) from None
    return torch


def render(tokenizer, item) -> Any:
    """A conversation through the model's chat template (its contents joined by newlines when the tokenizer
    has none); text and text pairs as they are. Training collators render with this too."""
    if not isinstance(item, list):
        return item
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(item, tokenize=False)
    return "\n".join(m["content"] for m in item)


class LocalModel:
    """The `Backend` over a model folder (`LocalModel("out/model")`) or an in-memory model and its tokenizer
    (`LocalModel(model, tokenizer)`: an EmbeddingModel, a ForSequenceClassification, a causal LM)."""

    def __init__(
        self,
        model: str | os.PathLike | Any,
        tokenizer=None,
        *,
        device: str = "auto",
        batch_size: int = 16,
        max_length: int = 512,
    ):
        torch = _torch()
        from mg_heads.tokenize import ensure_pad_token

        self.batch_size, self.max_length = batch_size, max_length
        if isinstance(model, str | os.PathLike):
            self.path: Path | None = Path(model)
            if not (self.path / "config.json").is_file():
                raise FileNotFoundError(f"--model {model}: not a model folder (no config.json)")
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.path) if tokenizer is None else tokenizer
            auto = "cuda" if torch.cuda.is_available() else "cpu"
            self.device = torch.device(auto if device == "auto" else device)
            self._model = None
        else:
            if tokenizer is None:
                raise TypeError("LocalModel(model, tokenizer): an in-memory model needs its tokenizer")
            self.path, self.tokenizer, self._model = None, tokenizer, model
            self.device = next(model.parameters()).device
        ensure_pad_token(self.tokenizer)  # decoders without a pad token pad with eos (mg-heads README)

    # -- loading (folders only; an in-memory model is what it is) ----------------------------------------
    def _folder(self) -> Path:
        if self.path is None:  # unreachable: an in-memory model is never None
            raise RuntimeError("LocalModel: no model folder to load from")
        return self.path

    def _seq_cls(self):
        if self._model is None:
            from transformers import AutoModelForSequenceClassification

            model = AutoModelForSequenceClassification.from_pretrained(self._folder())
            if model.config.pad_token_id is None:  # decoder classifiers find the last token by the pad id
                model.config.pad_token_id = self.tokenizer.pad_token_id
            self._model = model.to(self.device).eval()
        return self._model

    def _embedder(self):
        if self._model is None:
            from mg_heads.embedding import EmbeddingModel

            # The folder's modules.json says pooling and normalization; a bare transformers folder gets
            # mg-heads' default pooling (mean for encoders, last token for decoders).
            model = EmbeddingModel.from_pretrained(self._folder())
            if model.max_length:  # sentence-transformers' max_seq_length caps the inputs, as it does there
                self.max_length = min(self.max_length, model.max_length)
            self._model = model.to(self.device).eval()
        return self._model

    def _causal_lm(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(self._folder())
            self._model = model.to(self.device).eval()
        return self._model

    def _is_embedding_model(self) -> bool:
        from mg_heads.embedding import EmbeddingModel

        if self.path is None:
            return isinstance(self._model, EmbeddingModel)
        if (self.path / "modules.json").is_file():
            return True
        from transformers import AutoConfig

        archs = AutoConfig.from_pretrained(self.path).architectures or []
        return not any(a.endswith("ForSequenceClassification") for a in archs)

    # -- forwards ----------------------------------------------------------------------------------------
    def _batches(self, items: list, desc: str):
        for start in tqdm(range(0, len(items), self.batch_size), desc=desc, leave=False, disable=None):
            yield items[start : start + self.batch_size]

    def _forward(self, model, inputs: list, desc: str, *, seq_cls: bool):
        """Batched forwards in eval mode (restored afterwards: the model may be in training) -> [N, ...]."""
        torch = _torch()
        from mg_heads.tokenize import encode_texts

        was_training = model.training
        model.eval()
        out = []
        try:
            for batch in self._batches(inputs, desc):
                pairs = [b for _, b in batch] if isinstance(batch[0], tuple) else None
                texts = [a for a, _ in batch] if pairs is not None else batch
                enc = encode_texts(
                    self.tokenizer, texts, pairs, max_length=self.max_length, seq_cls=seq_cls
                ).to(self.device)
                # no_grad, not inference_mode: a model in training must not cache inference tensors.
                with torch.no_grad():
                    result = model(**enc)
                out.append((result.logits if seq_cls else result).float().cpu())
        finally:
            model.train(was_training)
        return torch.cat(out) if out else torch.empty(0, 1)

    def _logits(self, inputs: list, desc: str):
        rendered = [render(self.tokenizer, x) for x in inputs]
        return self._forward(self._seq_cls(), rendered, desc, seq_cls=True)

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): v for k, v in self._seq_cls().config.id2label.items()}

    @property
    def problem_type(self) -> str | None:
        return self._seq_cls().config.problem_type

    # -- the Backend methods -----------------------------------------------------------------------------
    def classify(self, inputs: list) -> list[dict]:
        torch = _torch()
        logits = self._logits(inputs, "classify")
        kind = self.problem_type or ("regression" if logits.shape[-1] == 1 else "single_label_classification")
        if kind == "regression":
            probs = logits
        elif kind == "multi_label_classification" or logits.shape[-1] == 1:
            probs = torch.sigmoid(logits)
        else:
            probs = torch.softmax(logits, dim=-1)
        names = self.id2label
        return [
            {"label": names.get(int(p.argmax()), str(int(p.argmax()))), "probs": p.tolist()} for p in probs
        ]

    def reward(self, inputs: list) -> list[float]:
        return self._logits(inputs, "reward")[:, 0].tolist()

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        return self._logits([(query, d) for d in documents], "rerank")[:, 0].tolist()

    def score(self, text_1: list[str], text_2: list[str]) -> list[float]:
        """A cross-encoder scores the pair; an embedding model gives the cosine of the two embeddings."""
        if self._is_embedding_model():
            a, b = self.embed(text_1), self.embed(text_2)
            return [sum(x * y for x, y in zip(u, v, strict=True)) for u, v in zip(a, b, strict=True)]
        return self._logits(list(zip(text_1, text_2, strict=True)), "score")[:, 0].tolist()

    def embed(self, texts: list[str]) -> list[list[float]]:
        torch = _torch()
        vectors = self._forward(self._embedder(), list(texts), "embed", seq_cls=False)
        # Normalized whatever the model's own setting: the evaluators rank by dot product = cosine.
        return torch.nn.functional.normalize(vectors, p=2, dim=-1).tolist()

    def generate(self, prompts: list[list[dict]], max_new_tokens: int = 64) -> list[str]:
        torch = _torch()
        model = self._causal_lm()
        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues from the end of each row
        answers: list[str] = []
        for batch in self._batches(prompts, "generate"):
            texts = [tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in batch]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            with torch.inference_mode():
                out = model.generate(
                    **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
                )
            answers += tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        return [a.strip() for a in answers]

    def response_loss(self, conversations: list[list[dict]]) -> float:
        """Mean token NLL of each last assistant reply given everything before it (for perplexity)."""
        torch = _torch()
        model = self._causal_lm()
        total, count = 0.0, 0
        for conv in tqdm(conversations, desc="loss", leave=False, disable=None):
            prompt_ids = self.tokenizer.apply_chat_template(
                conv[:-1], add_generation_prompt=True, return_dict=False
            )
            full_ids = self.tokenizer.apply_chat_template(conv, return_dict=False)[: self.max_length]
            ids = torch.tensor([full_ids], device=self.device)
            labels = ids.clone()
            labels[:, : len(prompt_ids)] = -100
            n = int((labels[:, 1:] != -100).sum())
            if n == 0:
                continue
            with torch.inference_mode():
                loss = model(input_ids=ids, labels=labels).loss
            total += float(loss) * n
            count += n
        return total / count if count else math.nan
