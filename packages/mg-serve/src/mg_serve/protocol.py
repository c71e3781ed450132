"""Request and response models of the pooling routes, /tokenize, /detokenize and /v1/models, with vLLM's
paths, field names and shapes (../shared/design/vllm-compat.md; vLLM 0.33's entrypoints/pooling).

Requests accept and ignore fields we do not use (vLLM's `user`, `priority`, `request_id`, ...), as vLLM
does, so a client written for vLLM needs no change; a field we use with a wrong type is a 400.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# One input: text, or token ids. A request: one input or a list of them.
Input = str | list[str] | list[int] | list[list[int]]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class OpenAIBaseModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorInfo(OpenAIBaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class ErrorResponse(OpenAIBaseModel):
    error: ErrorInfo


class UsageInfo(OpenAIBaseModel):
    prompt_tokens: int = 0
    total_tokens: int = 0
    completion_tokens: int | None = 0
    prompt_tokens_details: dict | None = None


class PoolingBase(OpenAIBaseModel):
    model: str | None = None
    # -1: the model's maximum length. Longer inputs are a 400 unless this is set (vLLM's rule).
    truncate_prompt_tokens: Annotated[int, Field(ge=-1)] | None = None


# --- /v1/embeddings and /pooling --------------------------------------------------------------------------
class EmbeddingRequest(PoolingBase):
    input: Input
    encoding_format: Literal["float", "base64"] = "float"
    # Matryoshka exports only (config.json `matryoshka_dimensions` / `is_matryoshka`).
    dimensions: int | None = None
    # None: the model's own setting (a Normalize module in modules.json).
    normalize: bool | None = None


class EmbeddingData(OpenAIBaseModel):
    index: int
    object: str = "embedding"
    embedding: list[float] | str


class EmbeddingResponse(OpenAIBaseModel):
    id: str = Field(default_factory=lambda: _id("embd"))
    object: str = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[EmbeddingData]
    usage: UsageInfo


class PoolingRequest(EmbeddingRequest):
    # vLLM 0.33's `task` field is accepted and ignored: the model's own task is the one served.
    use_activation: bool | None = None


class PoolingData(OpenAIBaseModel):
    index: int
    object: str = "pooling"
    data: list[float] | str


class PoolingResponse(OpenAIBaseModel):
    id: str = Field(default_factory=lambda: _id("pool"))
    object: str = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[PoolingData]
    usage: UsageInfo


# --- /classify ---------------------------------------------------------------------------------------------
class ClassificationRequest(PoolingBase):
    input: Input
    # False: raw logits. vLLM's older names for the same switch are read too.
    use_activation: bool | None = None
    activation: bool | None = None
    softmax: bool | None = None

    def activation_wanted(self) -> bool:
        for value in (self.use_activation, self.activation, self.softmax):
            if value is not None:
                return value
        return True


class ClassificationData(OpenAIBaseModel):
    index: int
    label: str | None
    probs: list[float]
    num_classes: int


class ClassificationResponse(OpenAIBaseModel):
    id: str = Field(default_factory=lambda: _id("classify"))
    object: str = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[ClassificationData]
    usage: UsageInfo


# --- /score, /v1/score -------------------------------------------------------------------------------------
class ScoreRequest(PoolingBase):
    # vLLM 0.33 also names the two sides queries/documents (and data_1/data_2); any pair of names works.
    text_1: str | list[str] | None = None
    text_2: str | list[str] | None = None
    queries: str | list[str] | None = None
    documents: str | list[str] | None = None
    data_1: str | list[str] | None = None
    data_2: str | list[str] | None = None
    use_activation: bool | None = None

    def sides(self) -> tuple[str | list[str] | None, str | list[str] | None]:
        for first, second in (("text_1", "text_2"), ("queries", "documents"), ("data_1", "data_2")):
            a, b = getattr(self, first), getattr(self, second)
            if a is not None or b is not None:
                return a, b
        return None, None


class ScoreData(OpenAIBaseModel):
    index: int
    object: str = "score"
    score: float


class ScoreResponse(OpenAIBaseModel):
    id: str = Field(default_factory=lambda: _id("score"))
    object: str = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[ScoreData]
    usage: UsageInfo


# --- /rerank, /v1/rerank, /v2/rerank -----------------------------------------------------------------------
class RerankRequest(PoolingBase):
    query: str
    documents: list[str]
    # 0 (or absent): every document.
    top_n: int = 0
    use_activation: bool | None = None


class RerankDocument(OpenAIBaseModel):
    text: str


class RerankResult(OpenAIBaseModel):
    index: int
    document: RerankDocument
    relevance_score: float


class RerankUsage(OpenAIBaseModel):
    total_tokens: int


class RerankResponse(OpenAIBaseModel):
    id: str = Field(default_factory=lambda: _id("rerank"))
    model: str
    usage: RerankUsage
    results: list[RerankResult]


# --- /tokenize, /detokenize --------------------------------------------------------------------------------
class TokenizeRequest(OpenAIBaseModel):
    model: str | None = None
    # One of the two: a prompt, or a conversation rendered with the model's chat template.
    prompt: str | None = None
    messages: list[dict] | None = None
    add_special_tokens: bool | None = None  # default: True for a prompt, False for messages (vLLM's)
    add_generation_prompt: bool = True
    return_token_strs: bool = False


class TokenizeResponse(OpenAIBaseModel):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(OpenAIBaseModel):
    model: str | None = None
    tokens: list[int]


class DetokenizeResponse(OpenAIBaseModel):
    prompt: str


# --- /v1/models, /version ----------------------------------------------------------------------------------
class ModelCard(OpenAIBaseModel):
    id: str
    object: str = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "mg-serve"
    root: str | None = None
    parent: str | None = None
    max_model_len: int | None = None
    permission: list[dict] = Field(default_factory=list)


class ModelList(OpenAIBaseModel):
    object: str = "list"
    data: list[ModelCard]


class VersionResponse(OpenAIBaseModel):
    version: str
