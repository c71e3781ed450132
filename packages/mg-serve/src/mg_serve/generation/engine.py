"""The torch generate engine: a causal LM folder served by transformers, one request at a time.

engine = load_generate_engine("runs/sft/export")
engine.chat([{"role": "user", "content": "Hi"}], temperature=0, max_tokens=20)     # -> str
for text in engine.chat_stream(messages, max_tokens=20): ...                       # text as it comes
engine.complete("Once upon a time", max_tokens=20)

Requests wait in a queue and one worker thread runs them in turn: prefill once, then one token per step
with the KV cache, the n choices of a request as one batch (the prompt's cache repeated, no padding).
Each step samples with the request's own torch.Generator (same seed, same output, whatever else runs),
turns tokens into text incrementally, and checks EOS, stop strings and the length limit. A cancelled
request (a client that went away) stops at its next step. Sampling follows vLLM: penalties, then greedy
when temperature is 0, else temperature, top-k, top-p, min-p; defaults come from the request, then the
model's generation_config.json, then OpenAI's.
"""

from __future__ import annotations

import json
import math
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from mg_serve.engine import tokenizer_lock
from mg_serve.errors import InputError

GREEDY_BELOW = 1e-5  # vLLM treats a temperature below this as greedy
# generation_config.json keys vLLM takes as the model's default sampling parameters -> our names.
GENERATION_CONFIG_DEFAULTS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "max_new_tokens": "max_tokens",
}
# Where configs keep the context length, in the order vLLM looks.
CONTEXT_LENGTH_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "max_sequence_length",
)


@dataclass(frozen=True)
class SamplingParams:
    """How to generate. max_tokens None: up to the model's length. temperature 0: greedy. top_k 0 or -1: off."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("max_tokens", self.max_tokens is None or self.max_tokens >= 1, "at least 1"),
            ("temperature", self.temperature >= 0, ">= 0"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", self.top_k >= -1, "-1 or 0 (off), or at least 1"),
            ("min_p", 0 <= self.min_p <= 1, "in [0, 1]"),
            ("repetition_penalty", self.repetition_penalty > 0, "> 0"),
            ("presence_penalty", -2 <= self.presence_penalty <= 2, "in [-2, 2]"),
            ("frequency_penalty", -2 <= self.frequency_penalty <= 2, "in [-2, 2]"),
            ("n", self.n >= 1, "at least 1"),
            ("stop", all(self.stop), "non-empty strings"),
        ]
        for name, ok, requirement in checks:
            if not ok:
                raise InputError(f"{name} must be {requirement}, got {getattr(self, name)!r}", param=name)

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


@dataclass(frozen=True)
class Delta:
    """New text of one choice. The last Delta of a choice carries its finish_reason: "stop" (EOS, a stop
    string or stop token: stop_reason says which string or token id, None for EOS), "length" or "abort"."""

    index: int
    text: str
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass(frozen=True)
class End:
    """A request is over: all its choices finished, or it failed with `error`."""

    error: BaseException | None = None


Event = Delta | End


@dataclass
class Choice:
    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class EngineStats:
    """Counters for /metrics (vLLM's num_requests_waiting/running, prompt/generation tokens)."""

    waiting: int = 0
    running: int = 0
    finished: int = 0
    aborted: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0


class Job:
    """One submitted request: its prompt, parameters and choices, and where its events go."""

    def __init__(self, prompt_ids: list[int], params: SamplingParams, sink: Callable[[Event], None]):
        self.prompt_ids = prompt_ids
        self.params = params
        self.choices = [Choice(index) for index in range(params.n)]
        self._sink = sink
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop at the next step (or never start); the remaining choices finish with "abort"."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def completion_tokens(self) -> int:
        return sum(len(choice.token_ids) for choice in self.choices)

    def emit(self, event: Event) -> None:
        try:
            self._sink(event)
        except RuntimeError:
            # The receiver is gone (its event loop closed): nobody reads this request any more.
            self.cancel()


class IncrementalDecoder:
    """Token ids in, new text out. Decodes a window of the last tokens rather than everything (so a step
    costs the same at token 10 and 10,000), with one token of context before the new ones so that
    tokenizers whose text for a token depends on its neighbour (a leading space) decode it right, and
    holds text back while it ends in an incomplete UTF-8 character."""

    def __init__(self, tokenizer: Any, skip_special_tokens: bool):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self.start = 0  # ids[start:done] is the context whose text was already returned
        self.done = 0

    def add(self, token_id: int, *, last: bool = False) -> str:
        """The text `token_id` adds; `last`: no token follows, so nothing is held back."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self.start : self.done])
        after = self._decode(self.ids[self.start :])
        if len(after) <= len(before) or (after.endswith("\ufffd") and not last):
            return ""
        self.start, self.done = self.done, len(self.ids)
        return after[len(before) :]

    def _decode(self, ids: list[int]) -> str:
        if not ids:
            return ""
        with tokenizer_lock(self.tokenizer):
            return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)


class ChoiceText:
    """The text of one choice as its tokens arrive: EOS and stop tokens, stop strings (the text stops before
    them unless include_stop_str_in_output), the length limit, and how much text may be sent yet (while a
    stop string could still be completing, its possible beginning is held back)."""

    def __init__(self, choice: Choice, tokenizer: Any, params: SamplingParams, eos_ids: frozenset[int]):
        self.choice = choice
        self.params = params
        self.eos_ids = frozenset() if params.ignore_eos else eos_ids
        self.decoder = IncrementalDecoder(tokenizer, params.skip_special_tokens)
        self.longest_stop = max((len(stop) for stop in params.stop), default=0)
        self.holdback = 0 if params.include_stop_str_in_output else max(self.longest_stop - 1, 0)
        self.text = ""
        self.sent = 0

    @property
    def finished(self) -> bool:
        return self.choice.finish_reason is not None

    def add(self, token_id: int, *, last: bool) -> Delta | None:
        """Take the next token; `last`: the length limit allows no more. A Delta when there is news."""
        self.choice.token_ids.append(token_id)
        if token_id in self.params.stop_token_ids:
            return self.finish("stop", token_id)
        if token_id in self.eos_ids:
            return self.finish("stop", None)
        searched = max(len(self.text) - self.longest_stop + 1, 0)
        self.text += self.decoder.add(token_id, last=last)
        if self.params.stop:
            hit = self._first_stop(searched)
            if hit is not None:
                position, stop = hit
                self.text = self.text[
                    : position + (len(stop) if self.params.include_stop_str_in_output else 0)
                ]
                return self.finish("stop", stop)
        if last:
            return self.finish("length", None)
        visible = len(self.text) - self.holdback
        if visible <= self.sent:
            return None
        delta = Delta(self.choice.index, self.text[self.sent : visible])
        self.sent = visible
        return delta

    def _first_stop(self, searched: int) -> tuple[int, str] | None:
        hits = [(self.text.find(stop, searched), stop) for stop in self.params.stop]
        found = [(position, stop) for position, stop in hits if position >= 0]
        return min(found, default=None)

    def finish(self, reason: str, stop_reason: int | str | None) -> Delta:
        self.choice.finish_reason = reason
        self.choice.stop_reason = stop_reason
        self.choice.text = self.text
        delta = Delta(self.choice.index, self.text[self.sent :], reason, stop_reason)
        self.sent = len(self.text)
        return delta


class Penalties:
    """vLLM's penalties on the logits: repetition (prompt and output tokens: positive logits divided,
    negative multiplied), and presence/frequency (output tokens: minus a constant, minus count times a
    constant)."""

    def __init__(
        self, params: SamplingParams, prompt_ids: list[int], n: int, vocab: int, device: torch.device
    ):
        self.params = params
        self.rows = torch.arange(n, device=device)
        self.seen = None
        self.counts = None
        if params.repetition_penalty != 1.0:
            self.seen = torch.zeros(n, vocab, dtype=torch.bool, device=device)
            self.seen[:, torch.tensor(prompt_ids, device=device)] = True
        if params.presence_penalty or params.frequency_penalty:
            self.counts = torch.zeros(n, vocab, device=device)

    @staticmethod
    def needed(params: SamplingParams) -> bool:
        return params.repetition_penalty != 1.0 or bool(params.presence_penalty or params.frequency_penalty)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if self.seen is not None:
            penalty = self.params.repetition_penalty
            penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
            logits = torch.where(self.seen, penalised, logits)
        if self.counts is not None:
            logits = logits - self.params.frequency_penalty * self.counts
            logits = logits - self.params.presence_penalty * (self.counts > 0).float()
        return logits

    def update(self, tokens: torch.Tensor) -> None:
        if self.seen is not None:
            self.seen[self.rows, tokens] = True
        if self.counts is not None:
            self.counts[self.rows, tokens] += 1


def sample(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator,
    penalties: Penalties | None = None,
) -> torch.Tensor:
    """One token per row of `logits` (float32, [n, vocab])."""
    if penalties is not None:
        logits = penalties.apply(logits)
    if params.greedy:
        return logits.argmax(dim=-1)
    logits = logits / params.temperature
    if 0 < params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = logits.softmax(dim=-1)
    if params.top_p < 1:
        # Keep the most likely tokens until their mass reaches top_p (the first is always kept).
        ordered, order = probs.sort(dim=-1, descending=True)
        drop_ordered = ordered.cumsum(dim=-1) - ordered > params.top_p
        drop = torch.zeros_like(drop_ordered).scatter(-1, order, drop_ordered)
        probs = probs.masked_fill(drop, 0.0)
    if params.min_p > 0:
        probs = probs.masked_fill(probs < params.min_p * probs.max(dim=-1, keepdim=True).values, 0.0)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class GenerateEngine:
    """A causal LM and its tokenizer, served one request at a time by a worker thread (see the module)."""

    task = "generate"
    capabilities = frozenset({"generate"})  # the routes it serves (mg_serve.engine.Engine)

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_dir: str | Path,
        served_model_name: str,
        max_model_len: int,
        defaults: dict[str, Any] | None = None,
        eos_token_ids: Sequence[int] = (),
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.model_dir = Path(model_dir)
        self.served_model_name = served_model_name
        self.max_model_len = max_model_len
        self.defaults = dict(defaults or {})
        self.eos_token_ids = frozenset(eos_token_ids)
        self.device = next(model.parameters()).device
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        self.stats = EngineStats()
        self._stats_lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="mg-serve-generate", daemon=True)
        self._worker.start()

    # --- text <-> tokens ----------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        with tokenizer_lock(self.tokenizer):
            # verbose=False: no warning for a prompt over the model's length; `fit` answers that.
            ids = self.tokenizer(text, add_special_tokens=add_special_tokens, verbose=False)["input_ids"]
        return list(ids)

    def detokenize(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        with tokenizer_lock(self.tokenizer):
            return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def render_chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> str:
        """The conversation as the model's chat template writes it."""
        import jinja2

        if not self.tokenizer.chat_template:
            raise InputError(
                "the model has no chat template (chat_template.jinja); use /v1/completions", param="messages"
            )
        try:
            return self.tokenizer.apply_chat_template(
                list(messages),
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                **(chat_template_kwargs or {}),
            )
        except (jinja2.TemplateError, ValueError, TypeError) as error:
            raise InputError(
                f"the chat template cannot render these messages: {error}", param="messages"
            ) from error

    def chat_prompt_ids(
        self, messages: Sequence[dict[str, Any]], *, add_special_tokens: bool = False, **template_options: Any
    ) -> list[int]:
        """The rendered conversation's token ids. The template writes the special tokens itself, so none
        are added on top unless asked (vLLM's default)."""
        text = self.render_chat(messages, **template_options)
        return self.tokenize(text, add_special_tokens=add_special_tokens)

    # --- requests -----------------------------------------------------------------------------------------

    def sampling_params(self, **overrides: Any) -> SamplingParams:
        """Parameters from `overrides`, then the model's generation_config.json, then OpenAI's defaults."""
        names = {f.name for f in fields(SamplingParams)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown sampling parameters {unknown}; known: {sorted(names)}")
        given = {**self.defaults, **overrides}
        for name in ("stop", "stop_token_ids"):
            if isinstance(given.get(name), str | int):
                given[name] = (given[name],)
            elif name in given:
                given[name] = tuple(given[name])
        return SamplingParams(**given)

    def fit(
        self,
        prompt_ids: Sequence[int],
        max_tokens: int | None,
        *,
        truncate_prompt_tokens: int | None = None,
        truncation_side: str | None = None,
    ) -> tuple[list[int], int]:
        """The prompt as the model will see it and how many tokens may follow: truncated only when asked
        (-1: to the model's length less one), else an InputError when it leaves no room for output."""
        ids = list(prompt_ids)
        limit = self.max_model_len
        if truncate_prompt_tokens is not None:
            keep = limit - 1 if truncate_prompt_tokens == -1 else truncate_prompt_tokens
            if keep > limit:
                raise InputError(
                    f"truncate_prompt_tokens={truncate_prompt_tokens} cannot be greater than "
                    f"max_model_len={limit}. Please request a smaller truncation size.",
                    param="truncate_prompt_tokens",
                )
            side = truncation_side or getattr(self.tokenizer, "truncation_side", "right")
            if len(ids) > keep:
                ids = ids[len(ids) - keep :] if side == "left" else ids[:keep]
        if not ids:
            raise InputError("the prompt is empty", param="prompt")
        if max(ids) >= self.vocab_size or min(ids) < 0:
            bad = next(i for i in ids if not 0 <= i < self.vocab_size)
            raise InputError(
                f"token id {bad} is out of the model's vocabulary (size {self.vocab_size})", param="prompt"
            )
        if len(ids) >= limit:
            raise InputError(
                f"This model's maximum context length is {limit} tokens. However, your prompt contains "
                f"{len(ids)} input tokens, which leaves no room for output tokens. "
                "Please reduce the length of the input prompt.",
                param="input_tokens",
            )
        if max_tokens is not None and max_tokens > limit:
            raise InputError(
                f"max_tokens={max_tokens} cannot be greater than max_model_len={limit}. "
                "Please request fewer output tokens.",
                param="max_tokens",
            )
        room = limit - len(ids)
        return ids, room if max_tokens is None else min(max_tokens, room)

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams, sink: Callable[[Event], None]) -> Job:
        """Queue a request; its Deltas and then one End go to `sink`, called from the worker thread.
        The prompt must fit (see `fit`): an InputError is raised here, before anything is queued."""
        if self._closed:
            raise RuntimeError("the engine is closed")
        ids, max_tokens = self.fit(prompt_ids, params.max_tokens)
        job = Job(ids, replace(params, max_tokens=max_tokens), sink)
        with self._stats_lock:
            self.stats.waiting += 1
        self._queue.put(job)
        return job

    def generate(self, prompt_ids: Sequence[int], params: SamplingParams | None = None) -> list[Choice]:
        """Run a request to its end and return its choices (blocking)."""
        events: queue.Queue[Event] = queue.Queue()
        job = self.submit(prompt_ids, params or self.sampling_params(), events.put)
        for _ in _deltas(job, events):
            pass
        return job.choices

    def stream(self, prompt_ids: Sequence[int], params: SamplingParams | None = None) -> Iterator[Delta]:
        """The request's Deltas as they come (a blocking iterator). The request is queued now, so a prompt
        that does not fit raises here; closing the iterator early cancels it."""
        events: queue.Queue[Event] = queue.Queue()
        job = self.submit(prompt_ids, params or self.sampling_params(), events.put)
        return _deltas(job, events)

    def chat(self, messages: Sequence[dict[str, Any]], **params: Any) -> str:
        """The assistant's reply to `messages` ([{"role", "content"}]); params as in SamplingParams."""
        return "".join(self.chat_stream(messages, **params))

    def chat_stream(self, messages: Sequence[dict[str, Any]], **params: Any) -> Iterator[str]:
        return self._texts(self.chat_prompt_ids(messages), params)

    def complete(self, prompt: str | Sequence[int], **params: Any) -> str:
        """The continuation of `prompt` (text, or token ids); params as in SamplingParams."""
        return "".join(self.complete_stream(prompt, **params))

    def complete_stream(self, prompt: str | Sequence[int], **params: Any) -> Iterator[str]:
        ids = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        return self._texts(ids, params)

    def _texts(self, prompt_ids: list[int], params: dict[str, Any]) -> Iterator[str]:
        sampling = self.sampling_params(**params)
        if sampling.n != 1:
            raise InputError("chat and complete return one text: use engine.generate for n > 1", param="n")
        return (delta.text for delta in self.stream(prompt_ids, sampling))

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        self._closed = True
        self._queue.put(None)
        self._worker.join()

    # --- the worker ---------------------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._stats_lock:
                self.stats.waiting -= 1
                self.stats.running += 1
            try:
                self._run(job)
                job.emit(End())
            except Exception as error:  # one request's failure (out of memory, ...) must not stop serving
                job.emit(End(error))
            finally:
                with self._stats_lock:
                    self.stats.running -= 1
                    self.stats.prompt_tokens += len(job.prompt_ids)
                    self.stats.generation_tokens += job.completion_tokens
                    if job.cancelled:
                        self.stats.aborted += 1
                    else:
                        self.stats.finished += 1

    @torch.inference_mode()
    def _run(self, job: Job) -> None:
        params = job.params
        assert params.max_tokens is not None  # submit resolved it
        texts = [ChoiceText(choice, self.tokenizer, params, self.eos_token_ids) for choice in job.choices]
        if job.cancelled:
            self._abort(job, texts)
            return
        generator = torch.Generator(device=self.device)
        if params.seed is None:
            generator.seed()
        else:
            generator.manual_seed(params.seed)
        prompt = torch.tensor([job.prompt_ids], device=self.device)
        output = self.model(input_ids=prompt, use_cache=True, logits_to_keep=1)
        cache, logits = output.cache, output.logits[:, -1, :]
        if params.n > 1:
            # The n choices share the prompt: one prefill, its cache repeated per choice.
            cache.batch_repeat_interleave(params.n)
            logits = logits.expand(params.n, -1)
        penalties = None
        if Penalties.needed(params):
            penalties = Penalties(params, job.prompt_ids, params.n, logits.shape[-1], self.device)
        for step in range(params.max_tokens):
            if job.cancelled:
                self._abort(job, texts)
                return
            tokens = sample(logits.float(), params, generator, penalties)
            last = step + 1 == params.max_tokens
            for text, token in zip(texts, tokens.tolist(), strict=True):
                if not text.finished and (delta := text.add(token, last=last)) is not None:
                    job.emit(delta)
            if all(text.finished for text in texts):
                return
            if penalties is not None:
                penalties.update(tokens)
            output = self.model(input_ids=tokens[:, None], cache=cache, use_cache=True)
            cache, logits = output.cache, output.logits[:, -1, :]

    @staticmethod
    def _abort(job: Job, texts: list[ChoiceText]) -> None:
        for text in texts:
            if not text.finished:
                job.emit(text.finish("abort", None))


def _deltas(job: Job, events: queue.Queue[Event]) -> Iterator[Delta]:
    try:
        while not isinstance(event := events.get(), End):
            yield event
    finally:
        job.cancel()  # a consumer that stops early (or a KeyboardInterrupt) stops the generation
    if event.error is not None:
        raise event.error


# --- loading ----------------------------------------------------------------------------------------------


def load_generate_engine(
    model_dir: str | Path,
    *,
    served_model_name: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    max_model_len: int | None = None,
    trust_remote_code: bool = False,
) -> GenerateEngine:
    """Load a causal LM folder (an mg-train generative export, or any transformers *ForCausalLM folder).

    device: None or "auto": "cuda" when there is one, else "cpu". dtype: None: float32 on CPU (half
    precision is slow there and drifts from the reference), the saved one on CUDA; else a torch dtype or
    its name ("bfloat16"). max_model_len: the config's context length unless shorter is asked.
    served_model_name: the name requests must use (default: `model_dir` as given, as `vllm serve` does).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a model folder (no config.json)")
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=_torch_dtype(dtype, device), trust_remote_code=trust_remote_code
    )
    # transformers wraps PreTrainedModel.to in functools.wraps, which typeshed types as the unbound
    # Module.to (self first), so mypy reads the device as the `self` argument.
    model.to(device).eval()  # type: ignore[arg-type]
    generation = _read_json(folder / "generation_config.json")
    length = _context_length(model.config, tokenizer)
    if max_model_len is not None:
        if max_model_len > length:
            raise ValueError(f"max_model_len={max_model_len} is longer than the model's context ({length})")
        length = max_model_len
    return GenerateEngine(
        model,
        tokenizer,
        model_dir=folder,
        served_model_name=served_model_name or str(model_dir),
        max_model_len=length,
        defaults={
            ours: generation[key] for key, ours in GENERATION_CONFIG_DEFAULTS.items() if key in generation
        },
        eos_token_ids=_eos_ids(generation, tokenizer),
    )


def _torch_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype | str:
    if dtype is None:
        return torch.float32 if device.type == "cpu" else "auto"
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    named = getattr(torch, dtype, None)
    if not isinstance(named, torch.dtype):
        raise ValueError(f"dtype {dtype!r} is not a torch dtype (float32, bfloat16, float16, auto)")
    return named


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _context_length(config: Any, tokenizer: Any) -> int:
    text_config = config.get_text_config()  # the language model's part of a multimodal config
    for key in CONTEXT_LENGTH_KEYS:
        value = getattr(text_config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    # A config without one: the tokenizer's limit, when it is a real one (not transformers' "no limit").
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10**9:
        return limit
    raise ValueError(
        "the model's config states no context length (max_position_embeddings); pass max_model_len"
    )


def _eos_ids(generation: dict[str, Any], tokenizer: Any) -> list[int]:
    """Where generation stops: generation_config's eos ids and the tokenizer's eos (vLLM stops on both)."""
    eos = generation.get("eos_token_id")
    ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids
