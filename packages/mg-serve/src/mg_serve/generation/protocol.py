"""Requests and responses of /v1/chat/completions and /v1/completions, in vLLM's (OpenAI's) shapes.

Field names, defaults and the shape of every response and stream chunk follow vLLM 0.32's OpenAI server
(vllm/entrypoints/openai/{chat_completion,completion}/protocol.py), so a client cannot tell the two apart.
Unknown fields are accepted and ignored, as vLLM does. Known fields whose behaviour the torch engine does
not have (logprobs, tools, beam search, ...) are refused with a 400 when set to anything but their
default, rather than silently ignored: a client that asks for logprobs must not get a response without them.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal, TypeGuard, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class OpenAIModel(BaseModel):
    # OpenAI's API allows extra fields; vLLM accepts and ignores them.
    model_config = ConfigDict(extra="allow")


class StreamOptions(OpenAIModel):
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


StopParam = str | list[str] | None

# field -> the values that mean "not asked for". Anything else is refused (see `refuse_unsupported`).
UNSUPPORTED_COMMON: dict[str, tuple[Any, ...]] = {
    "logit_bias": (None, {}),
    "prompt_logprobs": (None,),
    "use_beam_search": (False,),
    "min_tokens": (0,),
    "allowed_token_ids": (None, []),
    "bad_words": ([],),
    "structured_outputs": (None,),
    "response_format": (None, {"type": "text"}),
}
UNSUPPORTED_CHAT = {
    **UNSUPPORTED_COMMON,
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "tools": (None, []),
    "echo": (False,),
}
UNSUPPORTED_COMPLETION = {
    **UNSUPPORTED_COMMON,
    "logprobs": (None,),
    "echo": (None, False),
    "suffix": (None,),
    "best_of": (None, 1),
}


class SamplingRequest(OpenAIModel):
    """The fields /v1/chat/completions and /v1/completions share."""

    model: str | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    n: int = Field(1, ge=1)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stop: StopParam = []
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    user: str | None = None
    # vLLM's extra sampling parameters
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    stop_token_ids: list[int] | None = []
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    truncate_prompt_tokens: int | None = Field(None, ge=-1)
    truncation_side: Literal["left", "right"] | None = None

    @field_validator("n", mode="before")
    @classmethod
    def n_null_is_one(cls, value: Any) -> Any:
        # The openai client sends n only when asked; others send null for "the default".
        return 1 if value is None else value

    @model_validator(mode="after")
    def no_continuous_usage(self) -> SamplingRequest:
        if self.stream_options is not None and self.stream_options.continuous_usage_stats:
            raise ValueError("stream_options.continuous_usage_stats is not supported by mg-serve")
        return self

    def stop_strings(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def sampling_overrides(self, max_tokens: int | None) -> dict[str, Any]:
        """The SamplingParams fields this request sets; the rest come from the model's
        generation_config.json, then OpenAI's defaults (vLLM's order)."""
        given = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repetition_penalty": self.repetition_penalty,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
            "max_tokens": max_tokens,
        }
        return {
            **{name: value for name, value in given.items() if value is not None},
            "n": self.n,
            "seed": self.seed,
            "stop": self.stop_strings(),
            "stop_token_ids": tuple(self.stop_token_ids or ()),
            "ignore_eos": self.ignore_eos,
            "include_stop_str_in_output": self.include_stop_str_in_output,
            "skip_special_tokens": self.skip_special_tokens,
        }

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def refuse_unsupported(request: OpenAIModel, unsupported: dict[str, tuple[Any, ...]]) -> None:
    """Raise ValueError (pydantic makes it a validation error: 400) naming the first field set to something
    the torch engine does not do."""
    fields = {**request.model_dump(include=set(type(request).model_fields)), **(request.model_extra or {})}
    for name, defaults in unsupported.items():
        if name in fields and fields[name] not in defaults:
            raise ValueError(f"{name}={fields[name]!r} is not supported by mg-serve's torch engine")


# --- chat -------------------------------------------------------------------------------------------------


class TextPart(OpenAIModel):
    type: Literal["text"]
    text: str


class ChatMessageParam(OpenAIModel):
    """One message of the conversation. Extra keys (name, tool_call_id, ...) reach the chat template."""

    role: str
    content: str | list[dict[str, Any]] | None = None

    def template_message(self) -> dict[str, Any]:
        """The message as the chat template gets it: content parts joined into one string, as vLLM does for
        a text-only model."""
        message = self.model_dump(exclude_none=False)
        if isinstance(self.content, list):
            texts = []
            for part in self.content:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError(f"message content part of type {part.get('type')!r} is not supported")
                texts.append(part["text"])
            message["content"] = "\n".join(texts)
        return message


class ChatCompletionRequest(SamplingRequest):
    messages: Annotated[list[ChatMessageParam], Field(min_length=1)]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = 0
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = "none"
    echo: bool = False
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    chat_template_kwargs: dict[str, Any] | None = None
    # The chat template writes the special tokens itself; vLLM adds none on top by default.
    add_special_tokens: bool = False

    @model_validator(mode="after")
    def supported(self) -> ChatCompletionRequest:
        refuse_unsupported(self, UNSUPPORTED_CHAT)
        if self.add_generation_prompt and self.continue_final_message:
            raise ValueError("add_generation_prompt and continue_final_message cannot both be true")
        return self

    def requested_max_tokens(self) -> int | None:
        # vLLM: the newer name wins.
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def response_role(self) -> str:
        # vLLM answers as "assistant", or as the last message's role when it continues that message.
        return "assistant" if self.add_generation_prompt else self.messages[-1].role


class ChatMessage(OpenAIModel):
    role: str
    content: str | None = None


class ChatCompletionChoice(OpenAIModel):
    index: int
    message: ChatMessage
    logprobs: None = None
    finish_reason: str | None = "stop"
    stop_reason: int | str | None = None


class UsageInfo(OpenAIModel):
    prompt_tokens: int = 0
    total_tokens: int = 0
    completion_tokens: int | None = 0


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class ChatCompletionResponse(OpenAIModel):
    id: str = Field(default_factory=lambda: new_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChatCompletionChoice]
    usage: UsageInfo


class DeltaMessage(OpenAIModel):
    role: str | None = None
    content: str | None = None


class ChatCompletionStreamChoice(OpenAIModel):
    index: int
    delta: DeltaMessage
    logprobs: None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class ChatCompletionStreamResponse(OpenAIModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionStreamChoice]
    usage: UsageInfo | None = None


# --- completions ------------------------------------------------------------------------------------------

TokenIds = list[Annotated[int, Field(ge=0)]]


class CompletionRequest(SamplingRequest):
    prompt: TokenIds | list[TokenIds] | str | list[str]
    # OpenAI's and vLLM's default for completions (not for chat): 16 tokens.
    max_tokens: int | None = 16
    logprobs: int | None = None
    echo: bool | None = False
    suffix: str | None = None
    best_of: int | None = None
    add_special_tokens: bool = True

    @model_validator(mode="after")
    def supported(self) -> CompletionRequest:
        refuse_unsupported(self, UNSUPPORTED_COMPLETION)
        return self

    @model_validator(mode="before")
    @classmethod
    def null_max_tokens_is_default(cls, data: Any) -> Any:
        # vLLM reads max_tokens=null as the default (16), not as "up to the model length".
        if isinstance(data, dict) and data.get("max_tokens") is None:
            data = {**data, "max_tokens": 16}
        return data

    def prompts(self) -> list[str] | list[list[int]]:
        """The prompt as a list of prompts: texts, or token id lists."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if not prompt:
            raise ValueError("prompt must not be empty")
        if _is_token_ids(prompt):
            return [prompt]  # one prompt of token ids
        # pydantic validated the field as one member of its union, so the list holds texts only or token id
        # lists only; mypy cannot narrow a union of list types by their items.
        return cast("list[str] | list[list[int]]", prompt)


def _is_token_ids(prompt: list[int] | list[list[int]] | list[str]) -> TypeGuard[list[int]]:
    return all(isinstance(item, int) for item in prompt)


class CompletionChoice(OpenAIModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class CompletionResponse(OpenAIModel):
    id: str = Field(default_factory=lambda: new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo


class CompletionStreamResponse(OpenAIModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None
