"""A local HF model folder, loaded with the standard loaders (transformers Auto classes,
sentence-transformers), batched, on CPU or GPU."""

from __future__ import annotations

import math
import os
from pathlib import Path

from tqdm import tqdm


def _torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise RuntimeError("evaluating a local model needs torch: pip install 'mg-eval[models]'") from None
    return torch


class LocalModel:
    def __init__(
        self, path: str | os.PathLike, *, device: str = "auto", batch_size: int = 16, max_length: int = 512
    ):
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise FileNotFoundError(f"--model {path}: not a model folder (no config.json)")
        torch = _torch()
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.batch_size, self.max_length = batch_size, max_length
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self._model = None

    # -- helpers ---------------------------------------------------------------------------------------
    def _batches(self, items: list, desc: str):
        for start in tqdm(range(0, len(items), self.batch_size), desc=desc, leave=False, disable=None):
            yield items[start : start + self.batch_size]

    def _render(self, item) -> str | tuple[str, str]:
        """Message lists go through the model's chat template; plain text and pairs pass as they are."""
        if isinstance(item, list):
            return self.tokenizer.apply_chat_template(item, tokenize=False)
        return item

    def _seq_cls(self):
        if self._model is None:
            from transformers import AutoModelForSequenceClassification

            self._model = AutoModelForSequenceClassification.from_pretrained(self.path).to(self.device).eval()
            if self.tokenizer.pad_token is None:  # decoder classifiers need a pad id to find the last token
                self.tokenizer.pad_token = self.tokenizer.eos_token
            self._model.config.pad_token_id = self.tokenizer.pad_token_id
        return self._model

    def _logits(self, inputs: list, desc: str):
        torch = _torch()
        model = self._seq_cls()
        out = []
        for batch in self._batches([self._render(x) for x in inputs], desc):
            if isinstance(batch[0], tuple):
                enc = self.tokenizer(
                    [a for a, _ in batch],
                    [b for _, b in batch],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
            else:
                enc = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
            with torch.inference_mode():
                out.append(model(**enc.to(self.device)).logits.float().cpu())
        return torch.cat(out) if out else torch.empty(0, model.config.num_labels)

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): v for k, v in self._seq_cls().config.id2label.items()}

    @property
    def problem_type(self) -> str | None:
        return self._seq_cls().config.problem_type

    # -- the backend methods ---------------------------------------------------------------------------
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

    def _is_embedding_model(self) -> bool:
        from transformers import AutoConfig

        archs = AutoConfig.from_pretrained(self.path).architectures or []
        return (self.path / "modules.json").is_file() or not any(
            a.endswith("ForSequenceClassification") for a in archs
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            # The folder's own modules.json says pooling and normalization; without one, ST falls back to
            # mean pooling, the usual default for a bare encoder.
            self._model = SentenceTransformer(str(self.path), device=self.device)
            self._model.max_seq_length = min(self._model.max_seq_length or self.max_length, self.max_length)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def _causal_lm(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM

            self._model = AutoModelForCausalLM.from_pretrained(self.path).to(self.device).eval()
        return self._model

    def generate(self, prompts: list[list[dict]], max_new_tokens: int = 64) -> list[str]:
        torch = _torch()
        model = self._causal_lm()
        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues from the end of each row
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        answers = []
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
