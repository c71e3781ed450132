"""The API key in front of vLLM: `mg-serve --engine vllm --api-key KEY` serves this proxy on the user's port
and vLLM on a private loopback port behind it.

Why not vLLM's own --api-key: vLLM 0.32/0.33 checks it only under /v1 and /v2, so /classify, /score,
/rerank, /pooling, /tokenize and /metrics stay open, and its 401 body is not the error shape every other
error has. Here every route but /health needs the key (as on the torch engine), the 401 is
`{"error": {...}}`, and everything else, streamed answers included, passes through byte for byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from mg_serve.errors import error_response

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones the proxy sets itself: never forwarded either way.
HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
OPEN_PATHS = frozenset({"/health"})


def create_proxy_app(upstream: str, api_key: str) -> FastAPI:
    """An ASGI app that checks `Authorization: Bearer api_key` and forwards each request to `upstream`
    (vLLM's base URL, no key of its own)."""
    from mg_serve.app import KeyCheck

    keys = KeyCheck(api_key)
    # No read timeout: a long generation streams for as long as it takes, as it would from vLLM directly.
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(None, connect=10.0))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
    async def forward(request: Request, path: str) -> Response:
        if request.url.path not in OPEN_PATHS and (refused := keys.failure(request)) is not None:
            return refused
        headers = [
            (k, v) for k, v in request.headers.items() if k not in HOP_HEADERS and k != "authorization"
        ]
        outgoing = client.build_request(
            request.method,
            request.url.path,
            params=request.url.query,
            headers=headers,
            content=await request.body(),
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TransportError as err:
            return error_response(f"the vLLM server behind this one did not answer ({err!r})", 502)
        return StreamingResponse(
            _relay(answer),
            status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS},
        )

    return app


async def _relay(answer: httpx.Response) -> AsyncIterator[bytes]:
    # raw: vLLM's bytes as sent (its content-encoding header travels with them). The finally closes the
    # upstream stream also when the client goes away mid-stream, so vLLM sees the disconnect and stops.
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    finally:
        await answer.aclose()
