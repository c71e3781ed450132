"""The router: POST /v1/chat/completions and /v1/completions.

`router` serves the engine of the app it is mounted in (`request.state.engine`, which mg-serve's own
router sets, else `app.state.engine`); `make_router(get_engine)` builds one that serves whatever engine
`get_engine(request)` returns, to mount in your own FastAPI app. Handlers parse the body themselves and
answer every failure in vLLM's error shape, so the router needs none of the host app's error handlers.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, and the dependency
# they name (`EngineDependency`) is local to make_router, which string annotations could not resolve.
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from mg_serve.errors import ServeError, error_response, validation_message
from mg_serve.generation import protocol as p
from mg_serve.generation import serving
from mg_serve.generation.engine import GenerateEngine
from mg_serve.serving import check_model

log = logging.getLogger("mg_serve")

# The request model a route parses its body into, and its handler takes.
RequestBody = TypeVar("RequestBody", bound=p.SamplingRequest)


def app_engine(request: Request) -> GenerateEngine:
    """The engine set on the request by mg-serve's router, else the app's."""
    engine = getattr(request.state, "engine", None)
    return engine if engine is not None else request.app.state.engine


def make_router(get_engine: Callable[[Request], GenerateEngine]) -> APIRouter:
    """The generation routes, serving `get_engine(request)`."""

    def engine_of(request: Request) -> GenerateEngine:
        return get_engine(request)

    EngineDependency = Annotated[GenerateEngine, Depends(engine_of)]
    router = APIRouter()

    @router.post("/v1/chat/completions")
    async def create_chat_completion(request: Request, engine: EngineDependency) -> Response:
        return await _handle(request, engine, p.ChatCompletionRequest, serving.chat_completion)

    @router.post("/v1/completions")
    async def create_completion(request: Request, engine: EngineDependency) -> Response:
        return await _handle(request, engine, p.CompletionRequest, serving.completion)

    return router


async def _handle(
    request: Request,
    engine: GenerateEngine,
    model: type[RequestBody],
    handler: Callable[[GenerateEngine, RequestBody, Request, str], Awaitable[Response]],
) -> Response:
    # mg-serve's router names the model as create_app was told; a router of your own, as the engine was.
    name = getattr(request.state, "served_model_name", None) or engine.served_model_name
    try:
        try:
            body = model.model_validate_json(await request.body())
        except ValidationError as error:
            message, param = validation_message(error)
            raise ServeError(message, 400, param) from None
        check_model(body.model, name)
        return await handler(engine, body, request, name)
    except ServeError as error:
        return error_response(error.message, error.status, error.param)
    except Exception as error:  # the server keeps serving; the client gets the error shape
        log.exception("unexpected error on %s", request.url.path)
        return error_response(f"internal error: {type(error).__name__}: {error}", 500)


router = make_router(app_engine)
