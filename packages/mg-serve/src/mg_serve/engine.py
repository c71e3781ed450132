"""Engines: what serves a model folder. `load_engine(dir)` reads what the folder is and returns the engine
for it: `TorchEngine` for the pooling tasks (embed, classify, rm, rerank, score), the generation engine of
`mg_serve.generation` for causal LMs.

`TorchEngine` computes what vLLM computes for the same folder, with mg-heads' model classes and
tokenization (the code training used): right padding, the pooling and Normalize of modules.json,
vLLM's classification activation (problem_type, then the cross-encoder activation, then
sigmoid for one output / softmax for more), cosine similarity for /score and /rerank on an
embedding model. mg-eval's `LocalModel` runs the same models for evaluation, but its semantics are the
evaluator's (always-normalized embeddings, raw scores for a one-output head), so the engine does not call it.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from mg_serve.batching import DEFAULT_OVERHEAD_TOKENS, Batcher, Row
from mg_serve.errors import InputError
from mg_serve.folders import EXPORT_FILE, FolderError, inspect_folder

_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def tokenizer_lock(tokenizer) -> threading.Lock:
    """The lock of `tokenizer`: a fast tokenizer's truncation settings are shared state, so calls with
    different settings from several threads must not overlap ("Already borrowed")."""
    with _locks_guard:
        return _locks.setdefault(tokenizer, threading.Lock())


@runtime_checkable
class Engine(Protocol):
    """What the HTTP layer needs from any engine (pooling or generation)."""

    model_dir: Path
    task: str  # mg-train's task name: embed, classify, rm, rerank, score, or a generative one (sft, ...)
    capabilities: frozenset[str]  # the routes it serves: embed, pooling, classify, score, rerank, generate
    tokenizer: Any
    max_model_len: int

    def close(self) -> None: ...


def load_engine(
    model_dir: str | Path,
    *,
    device: str = "auto",
    dtype: str | None = None,
    max_batch_tokens: int = 8192,
    max_wait_ms: float = 5.0,
    trust_remote_code: bool = False,
) -> Engine:
    """The engine for `model_dir`, loaded. `dtype` None: the weights' own."""
    info = inspect_folder(model_dir)
    if info.kind == "generate":
        try:
            from mg_serve.generation import load_generate_engine
        except ImportError as e:
            raise NotImplementedError(
                f"{model_dir} is a causal LM ({info.task}); serving it needs mg_serve.generation ({e})"
            ) from None
        return load_generate_engine(
            model_dir, device=device, dtype=dtype, trust_remote_code=trust_remote_code
        )
    return TorchEngine(
        model_dir,
        device=device,
        dtype=dtype,
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        trust_remote_code=trust_remote_code,
    )


@dataclass
class Pooled:
    """Rows of a request after the forward and its post-processing, and how many prompt tokens it took."""

    values: torch.Tensor  # [N, D]
    prompt_tokens: int


def torch_dtype(name: str | None) -> torch.dtype | str:
    if name in (None, "auto"):
        return "auto"
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if name not in dtypes:
        raise ValueError(f"dtype must be auto or one of {sorted(dtypes)}, not {name!r}")
    return dtypes[name]


class TorchEngine:
    """A pooling export (or plain transformers / sentence-transformers folder) served with torch.

    Python API, no HTTP: `embed(texts)`, `classify(texts)`, `score(text_1, text_2)`, `rerank(query, docs)`
    (the signatures of mg-eval's Backend). Requests from many threads are batched together (see
    `mg_serve.batching`); `close()` stops the worker.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: str | None = None,
        max_batch_tokens: int = 8192,
        max_wait_ms: float = 5.0,
        overhead_tokens: int | None = None,
        trust_remote_code: bool = False,
    ):
        """`overhead_tokens`: what one more forward costs, in tokens of compute, when the batcher weighs
        splitting a batch by length against its padding (`mg_serve.batching.plan_forwards`); None: the
        device's default (`default_overhead_tokens`)."""
        from transformers import AutoTokenizer

        from mg_heads.tokenize import ensure_pad_token

        info = inspect_folder(model_dir)
        if info.kind == "generate":
            raise FolderError(f"{model_dir}: a causal LM; load it with mg_serve.load_engine")
        self.model_dir, self.task, self.kind = Path(model_dir), info.task, info.kind
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(auto if device == "auto" else device)
        hf_kwargs = {"dtype": torch_dtype(dtype), "trust_remote_code": trust_remote_code}
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, trust_remote_code=trust_remote_code)
        ensure_pad_token(self.tokenizer)  # decoders without a pad token pad with eos (mg-heads' rule)
        self.pooling: str | None = None
        sbert_max: int | None = None
        if self.kind == "embed":
            sbert_max = self._load_embedder(hf_kwargs)
        else:
            self._load_classifier(hf_kwargs)
        self.model.to(self.device).eval()
        config = self.model.config
        self.vocab_size = int(config.vocab_size)
        self.max_model_len = _max_model_len(config, sbert_max)
        self._batch_observers: list = []
        if overhead_tokens is None:
            overhead_tokens = default_overhead_tokens(self.device)
        self.batcher = Batcher(
            self._forward,
            max_batch_tokens=max_batch_tokens,
            max_wait_s=max_wait_ms / 1000,
            overhead_tokens=overhead_tokens,
            on_batch=self._observe_batch,
        )

    # -- loading -----------------------------------------------------------------------------------------
    def _load_embedder(self, hf_kwargs: dict) -> int | None:
        from mg_heads.embedding import EmbeddingModel

        model = EmbeddingModel.from_pretrained(self.model_dir, **hf_kwargs)
        # The model's own normalization is applied per request (a request may ask for none, or cut the
        # vector to Matryoshka dimensions first, which needs the raw vector).
        self.normalize_default, model.normalize = model.normalize, False
        self.model = model
        self.capabilities = frozenset({"embed", "pooling", "score", "rerank"})
        self.labels: list[str] | None = None
        self.matryoshka_dims, self.any_dims = _matryoshka(self.model_dir, model.config)
        self.hidden_size = int(model.config.hidden_size)
        self.pooling = model.pooling
        return model.max_length

    def _load_classifier(self, hf_kwargs: dict) -> None:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(self.model_dir, **hf_kwargs)
        if model.config.pad_token_id is None:  # decoder classifiers find the last token by the pad id
            model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = model
        config = model.config
        self.num_labels = int(config.num_labels)
        self.labels = [config.id2label.get(i, f"LABEL_{i}") for i in range(self.num_labels)]
        self.activation = _activation(config)
        one = {"score", "rerank"} if self.num_labels == 1 else set()
        self.capabilities = frozenset({"classify", "pooling"} | one)
        self.matryoshka_dims, self.any_dims = None, False

    def close(self) -> None:
        self.batcher.close()

    def add_batch_observer(self, observer) -> None:
        """`observer(rows, padded_tokens)` after every forward (the server's metrics)."""
        self._batch_observers.append(observer)

    def _observe_batch(self, rows: int, tokens: int) -> None:
        for observer in self._batch_observers:
            observer(rows, tokens)

    # -- tokenization --------------------------------------------------------------------------------------
    def encode(
        self,
        inputs: Sequence[str | list[int]],
        pairs: Sequence[str] | None = None,
        *,
        truncate_prompt_tokens: int | None = None,
        what: str = "input",
    ) -> list[Row]:
        """Token ids of each input (text, or token ids as they are), or of each (input, pair) pair, with
        the tokenizer's special tokens. Longer than the model allows: InputError, unless
        truncate_prompt_tokens is given (-1: the model's maximum), then truncated to it."""
        if not inputs:
            raise InputError(f"{what} is empty", param=what)
        limit = self.max_model_len
        if truncate_prompt_tokens is not None:
            if truncate_prompt_tokens > self.max_model_len:
                raise InputError(
                    f"truncate_prompt_tokens={truncate_prompt_tokens} is more than the model's maximum "
                    f"length {self.max_model_len}",
                    param="truncate_prompt_tokens",
                )
            if truncate_prompt_tokens > 0:
                limit = truncate_prompt_tokens
        truncate = truncate_prompt_tokens is not None
        paired: Sequence[str | None] = pairs if pairs is not None else [None] * len(inputs)
        rows = [self._encode_one(x, p, limit, truncate, what) for x, p in zip(inputs, paired, strict=True)]
        for row in rows:
            if len(row["input_ids"]) > limit:
                raise InputError(
                    f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                    f"requested {len(row['input_ids'])} tokens in the {what}. Please reduce the length of "
                    "the input, or set truncate_prompt_tokens.",
                    param=what,
                )
        if self.kind == "seq_cls":
            self._check_last_token(rows, what)
        return rows

    def _encode_one(self, item, pair, limit: int, truncate: bool, what: str) -> Row:
        if isinstance(item, list):  # token ids, used as given (vLLM does not add special tokens to them)
            if not item:
                raise InputError(f"{what} has an empty list of token ids", param=what)
            bad = [t for t in item if not 0 <= t < self.vocab_size]
            if bad:
                raise InputError(
                    f"{what}: token ids {bad[:5]} are outside the vocabulary (0..{self.vocab_size - 1})",
                    param=what,
                )
            if truncate and len(item) > limit:  # the side the tokenizer truncates text on
                item = item[-limit:] if self.tokenizer.truncation_side == "left" else item[:limit]
            return {"input_ids": list(item)}
        if item == "" or (pair is not None and pair == ""):
            raise InputError(f"{what} holds an empty string", param=what)
        with tokenizer_lock(self.tokenizer):
            enc = self.tokenizer(
                item,
                pair,
                truncation=truncate,
                max_length=limit if truncate else None,
                verbose=False,
            )
        row = {"input_ids": list(enc["input_ids"])}
        if "token_type_ids" in enc:
            row["token_type_ids"] = list(enc["token_type_ids"])
        return row

    def _check_last_token(self, rows: list[Row], what: str) -> None:
        # pad == eos: transformers' decoder classifiers skip a trailing eos that vLLM would score
        # (mg_heads.tokenize.rows_ending_with_pad); refuse rather than answer differently from vLLM.
        from mg_heads.pooling import is_encoder

        if is_encoder(self.model.config):
            return
        pad = self.tokenizer.pad_token_id
        bad = [i for i, r in enumerate(rows) if r["input_ids"][-1] == pad]
        if bad:
            raise InputError(
                f"{what} {bad} end with the pad token {self.tokenizer.pad_token!r}, which this classifier "
                "cannot score; strip it from the text",
                param=what,
            )

    # -- the forward (batch worker thread) ---------------------------------------------------------------
    def _forward(self, rows: list[Row]) -> torch.Tensor:
        batch = self._pad(rows)
        with torch.inference_mode():
            out = self.model(**batch)
        return (out if self.kind == "embed" else out.logits).float().cpu()

    def _pad(self, rows: list[Row]) -> dict[str, torch.Tensor]:
        """Right padding: the real tokens keep positions 0..n-1, as in vLLM, which does not pad. The ids of
        all rows go into the padded tensor in one masked write (no tensor ops per row)."""
        lengths = torch.tensor([len(r["input_ids"]) for r in rows])
        mask = torch.arange(int(lengths.max())) < lengths[:, None]
        ids = torch.full(mask.shape, self.tokenizer.pad_token_id, dtype=torch.long)
        ids[mask] = torch.tensor([t for r in rows for t in r["input_ids"]])
        batch = {"input_ids": ids, "attention_mask": mask.long()}
        # Any row, not the first: a token-id input (no token_type_ids, so segment 0) may share a forward
        # with text pairs from another request, whose second segment must keep its type.
        if any("token_type_ids" in r for r in rows):
            types = torch.zeros_like(ids)
            types[mask] = torch.tensor(
                [t for r in rows for t in r.get("token_type_ids") or [0] * len(r["input_ids"])]
            )
            batch["token_type_ids"] = types
        return {k: v.to(self.device) for k, v in batch.items()}

    def run(self, rows: list[Row]) -> torch.Tensor:
        """The forward of `rows`, batched with whatever else is being served: [len(rows), D]."""
        return self.batcher.submit(rows).result()

    # -- the operations (HTTP handlers and the Python API) --------------------------------------------------
    def pooled_embeddings(
        self,
        inputs: Sequence[str | list[int]],
        *,
        dimensions: int | None = None,
        normalize: bool | None = None,
        truncate_prompt_tokens: int | None = None,
    ) -> Pooled:
        self._require("embed")
        self._check_dimensions(dimensions)
        rows = self.encode(inputs, truncate_prompt_tokens=truncate_prompt_tokens)
        vectors = self.run(rows)
        if dimensions is not None:
            vectors = vectors[:, :dimensions]
        if self.normalize_default if normalize is None else normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1)
        return Pooled(vectors, _tokens(rows))

    def pooled_classes(
        self,
        inputs: Sequence[str | list[int]],
        *,
        use_activation: bool = True,
        truncate_prompt_tokens: int | None = None,
    ) -> Pooled:
        self._require("classify")
        rows = self.encode(inputs, truncate_prompt_tokens=truncate_prompt_tokens)
        logits = self.run(rows)
        return Pooled(self._activate(logits) if use_activation else logits, _tokens(rows))

    def pooled_scores(
        self,
        text_1: Sequence[str],
        text_2: Sequence[str],
        *,
        use_activation: bool = True,
        truncate_prompt_tokens: int | None = None,
    ) -> Pooled:
        """One score per pair: the cross-encoder's activated output, or the cosine of two embeddings."""
        self._require("score")
        if len(text_1) != len(text_2):
            raise InputError(f"{len(text_1)} texts in text_1 but {len(text_2)} in text_2", param="text_2")
        if self.kind == "embed":
            a = self.pooled_embeddings(text_1, normalize=True, truncate_prompt_tokens=truncate_prompt_tokens)
            b = self.pooled_embeddings(text_2, normalize=True, truncate_prompt_tokens=truncate_prompt_tokens)
            return Pooled((a.values * b.values).sum(-1), a.prompt_tokens + b.prompt_tokens)
        rows = self.encode(text_1, text_2, truncate_prompt_tokens=truncate_prompt_tokens, what="text pair")
        logits = self.run(rows)
        scores = self._activate(logits) if use_activation else logits
        return Pooled(scores[:, 0], _tokens(rows))

    # The Python API: mg-eval's Backend signatures.
    def embed(self, texts: list[str], *, dimensions: int | None = None) -> list[list[float]]:
        return self.pooled_embeddings(texts, dimensions=dimensions).values.tolist()

    def classify(self, texts: list[str]) -> list[dict]:
        probs = self.pooled_classes(texts).values
        assert self.labels is not None  # a classifier always has labels
        return [{"label": self.labels[int(p.argmax())], "probs": p.tolist()} for p in probs]

    def score(self, text_1: list[str], text_2: list[str]) -> list[float]:
        return self.pooled_scores(text_1, text_2).values.tolist()

    def rerank(self, query: str, documents: list[str]) -> list[float]:
        """One relevance score per document, in the documents' order (sort them yourself)."""
        return self.pooled_scores([query] * len(documents), documents).values.tolist()

    # -- helpers -------------------------------------------------------------------------------------------
    def _require(self, capability: str) -> None:
        if capability not in self.capabilities:
            from mg_serve.errors import ServeError

            raise ServeError(
                f"this model ({self.task}) does not serve {capability}; it serves {sorted(self.capabilities)}",
                status=404,
            )

    def _check_dimensions(self, dimensions: int | None) -> None:
        if dimensions is None:
            return
        if self.matryoshka_dims is None and not self.any_dims:
            raise InputError(
                "this model does not support matryoshka representation (no matryoshka_dimensions in its "
                "config.json), so dimensions cannot be changed",
                param="dimensions",
            )
        if not 1 <= dimensions <= self.hidden_size:
            raise InputError(
                f"dimensions must lie in 1..{self.hidden_size}, not {dimensions}", param="dimensions"
            )
        if self.matryoshka_dims is not None and dimensions not in self.matryoshka_dims:
            raise InputError(
                f"dimensions {dimensions} is not one of the model's matryoshka dimensions {self.matryoshka_dims}",
                param="dimensions",
            )

    def _activate(self, logits: torch.Tensor) -> torch.Tensor:
        if self.activation == "sigmoid":
            return torch.sigmoid(logits)
        if self.activation == "softmax":
            return torch.softmax(logits, dim=-1)
        return logits


def default_overhead_tokens(device: torch.device) -> int:
    """What one more forward costs in tokens of compute: on a CPU a forward's cost grows with its tokens
    from a small base (`DEFAULT_OVERHEAD_TOKENS`, measured); on an accelerator a small forward costs its
    kernel launches whatever its size, so splitting pays only for much padding. The accelerator's value is
    an estimate (~1 ms of launches for a small encoder in eager mode against ~1 us a token), not measured."""
    return DEFAULT_OVERHEAD_TOKENS if device.type == "cpu" else 1024


def _tokens(rows: list[Row]) -> int:
    return sum(len(r["input_ids"]) for r in rows)


def _activation(config) -> str:
    """vLLM's classification activation: problem_type first (regression: none, single label: softmax,
    multi label: sigmoid), then the cross-encoder's sentence_transformers.activation_fn, then sigmoid for
    one output and softmax for more."""
    kinds = {
        "regression": "none",
        "single_label_classification": "softmax",
        "multi_label_classification": "sigmoid",
    }
    if config.problem_type in kinds:
        return kinds[config.problem_type]
    fn = (getattr(config, "sentence_transformers", None) or {}).get("activation_fn", "")
    if fn.endswith("Identity"):
        return "none"
    if fn.endswith("Sigmoid"):
        return "sigmoid"
    return "sigmoid" if config.num_labels < 2 else "softmax"


def _matryoshka(model_dir: Path, config) -> tuple[list[int] | None, bool]:
    """The `dimensions` a request may ask for: config.json's matryoshka_dimensions (also read from
    mg_export.json), or any when `is_matryoshka` is set (vLLM's rule)."""
    dims = getattr(config, "matryoshka_dimensions", None)
    export_file = model_dir / EXPORT_FILE
    if dims is None and export_file.is_file():
        dims = json.loads(export_file.read_text(encoding="utf-8")).get("matryoshka_dimensions")
    return (sorted(dims, reverse=True) if dims else None), bool(getattr(config, "is_matryoshka", False))


def _max_model_len(config, sbert_max: int | None) -> int:
    """The longest input served: sentence-transformers' max_seq_length where the folder has one (vLLM reads
    it too), else the model's position embeddings (RoBERTa-style models offset theirs by pad id + 1)."""
    limits = [sbert_max] if sbert_max else []
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        if config.model_type in ("roberta", "xlm-roberta", "camembert"):
            positions -= (config.pad_token_id or 0) + 1
        limits.append(int(positions))
    return min(limits) if limits else 512
