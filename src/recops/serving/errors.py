"""Exceptions of the serving code mapped to HTTP answers, each with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.repository import (
    InvalidNameError,
    ModelLoadError,
    ModelNotFoundError,
    NotReadyError,
)
from recops.serving.service import NotFoundError


def _handler(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        content: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, NotFoundError):
            content.update(kind=exc.kind, id=exc.value, detail=f"unknown {exc.kind} {exc.value!r}")
        return JSONResponse(content, status_code=status)

    return handle


def install_error_handlers(app: FastAPI) -> None:
    """404 for unknown ids, 503 before a model is served, 409 for a failed load."""
    app.add_exception_handler(NotFoundError, _handler(404))
    app.add_exception_handler(ModelNotFoundError, _handler(404))
    app.add_exception_handler(NotReadyError, _handler(503))
    app.add_exception_handler(ModelLoadError, _handler(409))
    app.add_exception_handler(InvalidNameError, _handler(422))
