"""What each route does: a parsed request and an engine in, a response model out. Blocking (the engine's
batched forward), so the router runs these in a worker thread. Every user error raises ServeError.
"""

from __future__ import annotations

import base64

import numpy as np

from mg_serve import protocol as p
from mg_serve.engine import tokenizer_lock
from mg_serve.errors import InputError, ServeError


def as_inputs(value: p.Input, what: str = "input") -> list:
    """One input or a list of them -> a list: texts, or token-id lists."""
    if isinstance(value, str):
        return [value]
    if not value:
        raise InputError(f"{what} is empty", param=what)
    if isinstance(value[0], int):
        return [value]
    return list(value)


def encode_vector(values, encoding_format: str) -> list[float] | str:
    """float: a JSON list; base64: the float32 bytes (little-endian), as vLLM and the openai client do."""
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode("ascii")
    return values.tolist()


def embeddings(engine, req: p.EmbeddingRequest, name: str) -> p.EmbeddingResponse:
    pooled = engine.pooled_embeddings(
        as_inputs(req.input),
        dimensions=req.dimensions,
        normalize=req.normalize,
        truncate_prompt_tokens=req.truncate_prompt_tokens,
    )
    data = [
        p.EmbeddingData(index=i, embedding=encode_vector(v, req.encoding_format))
        for i, v in enumerate(pooled.values)
    ]
    return p.EmbeddingResponse(model=name, data=data, usage=_usage(pooled.prompt_tokens))


def pooling(engine, req: p.PoolingRequest, name: str) -> p.PoolingResponse:
    """The embedding of an embedder, the (activated) class outputs of a classifier."""
    inputs = as_inputs(req.input)
    if "embed" in engine.capabilities:
        pooled = engine.pooled_embeddings(
            inputs,
            dimensions=req.dimensions,
            normalize=req.normalize,
            truncate_prompt_tokens=req.truncate_prompt_tokens,
        )
    else:
        if req.dimensions is not None:
            raise InputError("dimensions applies to embedding models only", param="dimensions")
        pooled = engine.pooled_classes(
            inputs,
            use_activation=req.use_activation is not False,
            truncate_prompt_tokens=req.truncate_prompt_tokens,
        )
    data = [
        p.PoolingData(index=i, data=encode_vector(v, req.encoding_format))
        for i, v in enumerate(pooled.values)
    ]
    return p.PoolingResponse(model=name, data=data, usage=_usage(pooled.prompt_tokens))


def classify(engine, req: p.ClassificationRequest, name: str) -> p.ClassificationResponse:
    pooled = engine.pooled_classes(
        as_inputs(req.input),
        use_activation=req.activation_wanted(),
        truncate_prompt_tokens=req.truncate_prompt_tokens,
    )
    data = [
        p.ClassificationData(
            index=i, label=engine.labels[int(v.argmax())], probs=v.tolist(), num_classes=len(v)
        )
        for i, v in enumerate(pooled.values)
    ]
    return p.ClassificationResponse(model=name, data=data, usage=_usage(pooled.prompt_tokens))


def score_pairs(first, second) -> tuple[list[str], list[str]]:
    """vLLM's pairing: one text against one or many, or two lists of one length (a one-text list is
    paired with every text of the other side)."""
    if first is None or second is None:
        raise InputError("score needs text_1 and text_2 (or queries and documents)", param="text_1")
    a = [first] if isinstance(first, str) else list(first)
    b = [second] if isinstance(second, str) else list(second)
    if not a or not b:
        raise InputError("text_1 and text_2 must not be empty", param="text_1" if not a else "text_2")
    if len(a) == 1:
        a = a * len(b)
    elif len(b) == 1:
        b = b * len(a)
    if len(a) != len(b):
        raise InputError(
            f"text_1 has {len(a)} texts and text_2 has {len(b)}: give one or as many", param="text_2"
        )
    return a, b


def score(engine, req: p.ScoreRequest, name: str) -> p.ScoreResponse:
    a, b = score_pairs(*req.sides())
    pooled = engine.pooled_scores(
        a,
        b,
        use_activation=req.use_activation is not False,
        truncate_prompt_tokens=req.truncate_prompt_tokens,
    )
    data = [p.ScoreData(index=i, score=float(s)) for i, s in enumerate(pooled.values)]
    return p.ScoreResponse(model=name, data=data, usage=_usage(pooled.prompt_tokens))


def rerank(engine, req: p.RerankRequest, name: str) -> p.RerankResponse:
    if not req.documents:
        raise InputError("documents is empty", param="documents")
    pooled = engine.pooled_scores(
        [req.query] * len(req.documents),
        req.documents,
        use_activation=req.use_activation is not False,
        truncate_prompt_tokens=req.truncate_prompt_tokens,
    )
    order = sorted(range(len(req.documents)), key=lambda i: float(pooled.values[i]), reverse=True)
    if req.top_n > 0:
        order = order[: req.top_n]
    results = [
        p.RerankResult(
            index=i, document=p.RerankDocument(text=req.documents[i]), relevance_score=float(pooled.values[i])
        )
        for i in order
    ]
    return p.RerankResponse(
        model=name, usage=p.RerankUsage(total_tokens=pooled.prompt_tokens), results=results
    )


def tokenize(engine, req: p.TokenizeRequest, name: str) -> p.TokenizeResponse:
    tok = engine.tokenizer
    if (req.prompt is None) == (req.messages is None):
        raise InputError("tokenize needs either prompt or messages", param="prompt")
    with tokenizer_lock(tok):
        if req.messages is not None:
            if not tok.chat_template:
                raise InputError("this model's tokenizer has no chat template", param="messages")
            text = tok.apply_chat_template(
                req.messages, tokenize=False, add_generation_prompt=req.add_generation_prompt
            )
            special = bool(req.add_special_tokens)
        else:
            text, special = req.prompt, req.add_special_tokens is not False
        ids = tok(text, add_special_tokens=special, verbose=False)["input_ids"]
    strs = tok.convert_ids_to_tokens(ids) if req.return_token_strs else None
    return p.TokenizeResponse(count=len(ids), max_model_len=engine.max_model_len, tokens=ids, token_strs=strs)


def detokenize(engine, req: p.DetokenizeRequest, name: str) -> p.DetokenizeResponse:
    tok = engine.tokenizer
    size = len(tok)
    bad = [t for t in req.tokens if not 0 <= t < size]
    if bad:
        raise InputError(f"token ids {bad[:5]} are outside the vocabulary (0..{size - 1})", param="tokens")
    with tokenizer_lock(tok):
        return p.DetokenizeResponse(prompt=tok.decode(req.tokens))


def check_model(requested: str | None, name: str) -> None:
    if requested is not None and requested != name:
        raise ServeError(f"The model `{requested}` does not exist.", status=404, param="model")


def _usage(tokens: int) -> p.UsageInfo:
    return p.UsageInfo(prompt_tokens=tokens, total_tokens=tokens)
