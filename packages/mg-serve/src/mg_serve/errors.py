"""One error shape for every failure, vLLM's: `{"error": {"message", "type", "param", "code"}}`, where
`code` is the HTTP status and `type` names it (BadRequestError, NotFoundError, ...).

`ServeError` is what the engines and the handlers raise; `install_error_handlers(app)` turns everything else
a FastAPI app can answer with (pydantic's 422, unknown routes, wrong methods, unexpected exceptions) into
the same shape, so a client reads one format whatever went wrong.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("mg_serve")

# The names vLLM gives its errors; other statuses get the status phrase without spaces + "Error".
ERROR_TYPES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    500: "InternalServerError",
    501: "NotImplementedError",
}


class ServeError(Exception):
    """A request the server answers with an error: `status` (400 unless said), a message, the field."""

    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.message, self.status, self.param = message, status, param


class InputError(ServeError, ValueError):
    """The request's input cannot be served as it is (empty, too long, bad token ids): 400. Also a
    ValueError, so the Python API raises what Python callers expect."""


def error_type(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return HTTPStatus(status).phrase.replace(" ", "").replace("-", "") + "Error"


def error_body(message: str, status: int, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type(status), "param": param, "code": status}}


def error_response(message: str, status: int = 400, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, status, param), status_code=status)


def validation_message(error: ValidationError | RequestValidationError) -> tuple[str, str | None]:
    """pydantic's errors as one line: `field: what is wrong` for each, and the first field's name."""
    parts, first = [], None
    for item in error.errors():
        loc = [str(p) for p in item.get("loc", ()) if p != "body"]
        field = ".".join(loc)
        first = first or field or None
        parts.append(f"{field}: {item['msg']}" if field else item["msg"])
    return "; ".join(parts) or "invalid request", first


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of `app` in the error shape (mounting mg-serve's router in your own app: call
    this too if you want your app's 404s and 500s in that shape)."""

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return error_response(exc.message, exc.status, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # vLLM answers malformed JSON and wrong types with 400, not FastAPI's 422.
        message, param = validation_message(exc)
        return error_response(message, 400, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return error_response(message, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(f"internal error: {type(exc).__name__}: {exc}", 500)
