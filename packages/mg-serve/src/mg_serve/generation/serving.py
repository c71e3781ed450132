"""From a parsed request to the engine and back: prompts, sampling parameters, the JSON response or the
server-sent events of a stream (vLLM's chunks, then `data: [DONE]`).

The engine's worker thread hands events to the event loop (call_soon_threadsafe); a request whose client
goes away is cancelled: a stream when sending fails or the disconnect arrives (the response ends, and its
jobs with it), a plain request by watching for the disconnect while it waits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from mg_serve.errors import InputError, error_body, error_response
from mg_serve.generation import protocol as p
from mg_serve.generation.engine import Delta, End, Event, GenerateEngine, Job, SamplingParams

log = logging.getLogger("mg_serve")


class Run:
    """The engine jobs of one HTTP request (one per prompt), read from the event loop."""

    def __init__(self, engine: GenerateEngine, prompts: list[list[int]], params: SamplingParams):
        loop = asyncio.get_running_loop()
        self.n = params.n
        self.queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()
        self.jobs: list[Job] = []
        try:
            for number, ids in enumerate(prompts):
                self.jobs.append(engine.submit(ids, params, partial(self._put, loop, number)))
        except BaseException:
            self.cancel()
            raise

    def _put(self, loop: asyncio.AbstractEventLoop, number: int, event: Event) -> None:
        loop.call_soon_threadsafe(self.queue.put_nowait, (number, event))

    async def deltas(self) -> AsyncIterator[tuple[int, Delta]]:
        """(choice index over all prompts, delta) as they come, until every job has ended. Prompt k's
        choice j is index k * n + j, as in vLLM."""
        ended = 0
        while ended < len(self.jobs):
            number, event = await self.queue.get()
            if isinstance(event, End):
                ended += 1
                if event.error is not None:
                    raise event.error
            else:
                yield number * self.n + event.index, event

    async def wait(self) -> None:
        async for _ in self.deltas():
            pass

    def cancel(self) -> None:
        for job in self.jobs:
            job.cancel()

    def usage(self) -> p.UsageInfo:
        prompt = sum(len(job.prompt_ids) for job in self.jobs)
        completion = sum(job.completion_tokens for job in self.jobs)
        return p.UsageInfo(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )


class EventStream(StreamingResponse):
    """Server-sent events that cancel their run however the response ends: finished, the client gone
    (a failed send or the disconnect message), or an error."""

    def __init__(self, content: AsyncIterator[str], run: Run):
        super().__init__(content, media_type="text/event-stream")
        self.run = run

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.run.cancel()


def sse(data: str) -> str:
    return f"data: {data}\n\n"


# --- chat ---------------------------------------------------------------------------------------------------


async def chat_completion(
    engine: GenerateEngine, req: p.ChatCompletionRequest, request: Request, name: str
) -> Response:
    try:
        messages = [message.template_message() for message in req.messages]
    except ValueError as error:
        raise InputError(str(error), param="messages") from None
    ids = engine.chat_prompt_ids(
        messages,
        add_special_tokens=req.add_special_tokens,
        add_generation_prompt=req.add_generation_prompt,
        continue_final_message=req.continue_final_message,
        chat_template_kwargs=req.chat_template_kwargs,
    )
    params = engine.sampling_params(**req.sampling_overrides(req.requested_max_tokens()))
    ids, _ = engine.fit(
        ids,
        params.max_tokens,
        truncate_prompt_tokens=req.truncate_prompt_tokens,
        truncation_side=req.truncation_side,
    )
    run = Run(engine, [ids], params)
    if req.stream:
        return EventStream(_chat_events(run, req, name), run)
    if not await finished_before_disconnect(run, request):
        return error_response("Client disconnected", 400)
    choices = [
        p.ChatCompletionChoice(
            index=choice.index,
            message=p.ChatMessage(role=req.response_role(), content=choice.text),
            finish_reason=choice.finish_reason,
            stop_reason=choice.stop_reason,
        )
        for choice in run.jobs[0].choices
    ]
    return JSONResponse(p.ChatCompletionResponse(model=name, choices=choices, usage=run.usage()).model_dump())


async def _chat_events(run: Run, req: p.ChatCompletionRequest, name: str) -> AsyncIterator[str]:
    response_id, created = p.new_id("chatcmpl"), p.now()

    def chunk(choices: list[p.ChatCompletionStreamChoice], usage: p.UsageInfo | None = None) -> str:
        message = p.ChatCompletionStreamResponse(
            id=response_id,
            object="chat.completion.chunk",
            created=created,
            model=name,
            choices=choices,
            **({"usage": usage} if usage else {}),
        )
        # Only the fields set here, as vLLM sends them (no "usage": null on every chunk).
        return sse(message.model_dump_json(exclude_unset=True))

    async def body() -> AsyncIterator[str]:
        # First, every choice's role, as vLLM does.
        for index in range(run.n):
            role = p.DeltaMessage(role=req.response_role(), content="")
            yield chunk(
                [p.ChatCompletionStreamChoice(index=index, delta=role, logprobs=None, finish_reason=None)]
            )
        async for index, delta in run.deltas():
            choice = p.ChatCompletionStreamChoice(
                index=index,
                delta=p.DeltaMessage(content=delta.text),
                logprobs=None,
                finish_reason=delta.finish_reason,
            )
            if delta.finish_reason is not None:
                choice.stop_reason = delta.stop_reason
            yield chunk([choice])
        if req.include_usage:
            yield chunk([], usage=run.usage())

    async for event in _with_error_and_done(body):
        yield event


# --- completions --------------------------------------------------------------------------------------------


async def completion(
    engine: GenerateEngine, req: p.CompletionRequest, request: Request, name: str
) -> Response:
    try:
        prompts = req.prompts()
    except ValueError as error:
        raise InputError(str(error), param="prompt") from None
    params = engine.sampling_params(**req.sampling_overrides(req.max_tokens))
    fitted = []
    for prompt in prompts:  # every prompt is checked before any is queued
        ids = (
            engine.tokenize(prompt, add_special_tokens=req.add_special_tokens)
            if isinstance(prompt, str)
            else prompt
        )
        fitted.append(
            engine.fit(
                ids,
                params.max_tokens,
                truncate_prompt_tokens=req.truncate_prompt_tokens,
                truncation_side=req.truncation_side,
            )[0]
        )
    run = Run(engine, fitted, params)
    if req.stream:
        return EventStream(_completion_events(run, req, name), run)
    if not await finished_before_disconnect(run, request):
        return error_response("Client disconnected", 400)
    choices = [
        p.CompletionChoice(
            index=number * run.n + choice.index,
            text=choice.text,
            finish_reason=choice.finish_reason,
            stop_reason=choice.stop_reason,
        )
        for number, job in enumerate(run.jobs)
        for choice in job.choices
    ]
    return JSONResponse(p.CompletionResponse(model=name, choices=choices, usage=run.usage()).model_dump())


async def _completion_events(run: Run, req: p.CompletionRequest, name: str) -> AsyncIterator[str]:
    response_id, created = p.new_id("cmpl"), p.now()

    def chunk(choices: list[p.CompletionChoice], usage: p.UsageInfo | None = None) -> str:
        message = p.CompletionStreamResponse(
            id=response_id,
            object="text_completion",
            created=created,
            model=name,
            choices=choices,
            **({"usage": usage} if usage else {}),
        )
        return sse(message.model_dump_json(exclude_unset=True))

    async def body() -> AsyncIterator[str]:
        async for index, delta in run.deltas():
            choice = p.CompletionChoice(
                index=index,
                text=delta.text,
                logprobs=None,
                finish_reason=delta.finish_reason,
                stop_reason=delta.stop_reason,
            )
            yield chunk([choice])
        if req.include_usage:
            yield chunk([], usage=run.usage())

    async for event in _with_error_and_done(body):
        yield event


# --- shared -------------------------------------------------------------------------------------------------


async def _with_error_and_done(body: Callable[[], AsyncIterator[str]]) -> AsyncIterator[str]:
    """The stream's events, then `data: [DONE]`. A failure after the 200 has gone out can only be told in
    the stream: one event in the error shape, as vLLM sends it."""
    try:
        async for event in body():
            yield event
    except Exception as error:
        log.exception("generation failed while streaming")
        yield sse(json.dumps(error_body(f"internal error: {type(error).__name__}: {error}", 500)))
    yield sse("[DONE]")


async def finished_before_disconnect(run: Run, request: Request) -> bool:
    """Wait for `run`; False (and the run cancelled) if the client disconnects first."""
    work = asyncio.ensure_future(run.wait())
    watch = asyncio.ensure_future(_disconnect(request))
    try:
        done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
            run.cancel()
    if work in done:
        work.result()  # a failed generation raises here
        return True
    return False


async def _disconnect(request: Request) -> None:
    # The body has been read: the next message the server sends is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass
