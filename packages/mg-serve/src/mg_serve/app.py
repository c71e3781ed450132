"""The HTTP layer: `router(engine)` (an APIRouter to mount in any FastAPI app, under any prefix) and
`create_app(model_dir or engine)` (the whole server: the router, the error shape for every failure,
Prometheus metrics).

Route handlers parse and check the request themselves (key, model name, what the model serves, the body),
so a router mounted in someone else's app answers in the same shape as mg-serve's own app.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

import mg_serve
from mg_serve import protocol as p
from mg_serve import serving
from mg_serve.engine import Engine, load_engine
from mg_serve.errors import ServeError, error_response, install_error_handlers, validation_message

log = logging.getLogger("mg_serve")

# path -> (what the model must serve, request model, handler). vLLM's paths.
POOLING_ROUTES: dict[str, tuple[str | None, type[BaseModel], Callable]] = {
    "/v1/embeddings": ("embed", p.EmbeddingRequest, serving.embeddings),
    "/pooling": ("pooling", p.PoolingRequest, serving.pooling),
    "/classify": ("classify", p.ClassificationRequest, serving.classify),
    "/score": ("score", p.ScoreRequest, serving.score),
    "/v1/score": ("score", p.ScoreRequest, serving.score),
    "/rerank": ("rerank", p.RerankRequest, serving.rerank),
    "/v1/rerank": ("rerank", p.RerankRequest, serving.rerank),
    "/v2/rerank": ("rerank", p.RerankRequest, serving.rerank),
    "/tokenize": (None, p.TokenizeRequest, serving.tokenize),
    "/detokenize": (None, p.DetokenizeRequest, serving.detokenize),
}
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")


def current_engine(request: Request) -> Engine:
    """The engine serving this request: the one the router was built with (set per request by the
    router), else the app's (`app.state.engine`). Generation handlers read it through this."""
    engine = getattr(request.state, "engine", None)
    return engine if engine is not None else request.app.state.engine


class KeyCheck:
    """`Authorization: Bearer KEY` on every route but /health (none: open)."""

    def __init__(self, api_key: str | None):
        self.api_key = api_key

    def failure(self, request: Request) -> JSONResponse | None:
        if not self.api_key:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(token.strip(), self.api_key):
            return None
        return error_response("missing or wrong API key (send Authorization: Bearer KEY)", 401)

    def dependency(self, request: Request) -> None:
        if self.failure(request) is not None:
            raise ServeError("missing or wrong API key (send Authorization: Bearer KEY)", status=401)


def router(
    engine: Engine,
    *,
    api_key: str | None = None,
    served_model_name: str | None = None,
    metrics: Metrics | None = None,
) -> APIRouter:
    """Every route of mg-serve for `engine`: vLLM's paths, fields and error shape. Mount it with
    `app.include_router(router(engine), prefix="/ml")`; /metrics only when `metrics` is given."""
    name = served_model_name or str(engine.model_dir)
    keys = KeyCheck(api_key)
    r = APIRouter()

    @r.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @r.get("/version")
    async def version(request: Request):
        return keys.failure(request) or p.VersionResponse(version=mg_serve.__version__)

    @r.get("/v1/models")
    async def models(request: Request):
        card = p.ModelCard(id=name, root=str(engine.model_dir), max_model_len=engine.max_model_len)
        return keys.failure(request) or p.ModelList(data=[card])

    if metrics is not None:

        @r.get("/metrics")
        async def prometheus(request: Request):
            return keys.failure(request) or metrics.response()

    for path, (capability, model, handler) in POOLING_ROUTES.items():
        r.add_api_route(path, _endpoint(engine, name, keys, capability, model, handler), methods=["POST"])

    if "generate" in engine.capabilities:
        from mg_serve.generation import router as generation_router

        def provide_engine(request: Request) -> None:
            request.state.engine = engine
            request.state.served_model_name = name

        r.include_router(generation_router, dependencies=[Depends(keys.dependency), Depends(provide_engine)])
    else:
        for path in GENERATION_PATHS:
            r.add_api_route(path, _not_served(engine, keys, path), methods=["POST"])
    return r


def _endpoint(engine, name: str, keys: KeyCheck, capability, model: type[BaseModel], handler):
    async def endpoint(request: Request) -> Response:
        if (denied := keys.failure(request)) is not None:
            return denied
        try:
            if capability is not None and capability not in engine.capabilities:
                raise ServeError(
                    f"this model ({engine.task}) does not serve {request.url.path}; "
                    f"it serves {', '.join(sorted(engine.capabilities))}",
                    status=404,
                )
            try:
                req = model.model_validate_json(await request.body())
            except ValidationError as e:
                message, param = validation_message(e)
                raise ServeError(message, 400, param) from None
            serving.check_model(getattr(req, "model", None), name)
            result = await run_in_threadpool(handler, engine, req, name)
        except ServeError as e:
            return error_response(e.message, e.status, e.param)
        except Exception as e:  # the server keeps serving; the client gets the error shape
            log.exception("unexpected error on %s", request.url.path)
            return error_response(f"internal error: {type(e).__name__}: {e}", 500)
        return JSONResponse(result.model_dump())

    endpoint.__name__ = f"post_{model.__name__}"
    return endpoint


def _not_served(engine, keys: KeyCheck, path: str):
    async def endpoint(request: Request) -> Response:
        if (denied := keys.failure(request)) is not None:
            return denied
        return error_response(
            f"this model ({engine.task}) does not serve {path}: it is not a generative model", 404
        )

    return endpoint


class Metrics:
    """Prometheus metrics of one app, in a registry of its own (several apps in one process do not clash):
    requests per route and status, latency per route, rows and padded tokens per batched forward."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mg_serve_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "mg_serve_request_seconds", "time to the response's start", ["route"], registry=self.registry
        )
        self.batch_rows = Histogram(
            "mg_serve_batch_rows",
            "inputs per batched forward",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.batch_tokens = Histogram(
            "mg_serve_batch_tokens",
            "padded tokens per batched forward",
            buckets=(64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
            registry=self.registry,
        )

    def observe_batch(self, rows: int, tokens: int) -> None:
        self.batch_rows.observe(rows)
        self.batch_tokens.observe(tokens)

    def response(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts every request by route template and status, and times it to the response's start. Plain
    ASGI (not BaseHTTPMiddleware), so streamed responses and client disconnects pass through untouched."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_and_time(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                self.metrics.latency.labels(_route(scope)).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, send_and_time)
        finally:
            self.metrics.requests.labels(_route(scope), scope["method"], str(status[0])).inc()


def _route(scope) -> str:
    # The router writes the matched route into the scope; unknown paths are counted together.
    return getattr(scope.get("route"), "path", "unmatched")


def create_app(
    model: str | Path | Engine,
    *,
    api_key: str | None = None,
    served_model_name: str | None = None,
    device: str = "auto",
    dtype: str | None = None,
    max_batch_tokens: int = 8192,
    max_wait_ms: float = 5.0,
    trust_remote_code: bool = False,
) -> FastAPI:
    """The mg-serve ASGI app for a model folder (loaded here, closed when the app shuts down) or an
    engine you loaded (yours to close). `served_model_name` defaults to the folder path as given."""
    name: str | None  # None: the engine's folder, as the router and app.state name it
    if isinstance(model, str | Path):
        engine = load_engine(
            model,
            device=device,
            dtype=dtype,
            max_batch_tokens=max_batch_tokens,
            max_wait_ms=max_wait_ms,
            trust_remote_code=trust_remote_code,
        )
        owned, name = True, served_model_name or str(model)
    else:
        engine, owned, name = model, False, served_model_name

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import anyio.to_thread

        # Each waiting request holds a worker thread (see serving); the default 40 would cap how many
        # requests the batcher can see at once.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, 256)
        try:
            yield
        finally:
            if owned:
                engine.close()

    app = FastAPI(title="mg-serve", version=mg_serve.__version__, lifespan=lifespan)
    app.state.engine = engine
    app.state.served_model_name = name or str(engine.model_dir)
    install_error_handlers(app)
    metrics = Metrics()
    app.state.metrics = metrics
    if hasattr(engine, "add_batch_observer"):
        engine.add_batch_observer(metrics.observe_batch)

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(router(engine, api_key=api_key, served_model_name=name, metrics=metrics))
    return app
