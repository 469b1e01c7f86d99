"""Exceptions of the serving code mapped to HTTP answers, each with its reason.

Every 422 has the shape FastAPI gives a validation error (``detail``: a list naming
each offending field); the other errors say why in a ``detail`` string. A request
that comes before a model is served gets 503 with ``Retry-After``: the follow
interval of a server waiting for its registry alias (its next look), else
:data:`NOT_READY_RETRY_S`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from recops.serving.loaded_model import ModelLoadError
from recops.serving.repository import InvalidNameError, ModelNotFoundError, NotReadyError
from recops.serving.service import NotFoundError

log = logging.getLogger("recops.serving")

#: nginx's code for a request the client abandoned: never sent (nobody listens), but
#: it labels the request's metrics as a client error.
CLIENT_CLOSED_REQUEST = 499
#: ``Retry-After`` (seconds) of a request refused because no model is served yet.
NOT_READY_RETRY_S = 5


def _handler(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        content: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, NotFoundError):
            content.update(kind=exc.kind, id=exc.value, detail=f"unknown {exc.kind} {exc.value!r}")
        return JSONResponse(content, status_code=status)

    return handle


async def _not_ready(request: Request, exc: Exception) -> Response:
    settings = request.app.state.settings
    retry = NOT_READY_RETRY_S
    if settings.follow_alias is not None:
        retry = max(1, math.ceil(settings.follow_interval_s))
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(retry)})


async def _invalid_name(request: Request, exc: Exception) -> Response:
    # A model name from the body that the repository refuses: a validation error.
    detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=422)


async def _client_disconnected(request: Request, exc: Exception) -> Response:
    # The client hung up before its body was complete: nothing to answer, nothing wrong
    # with the server, so no traceback and no 5xx.
    log.info(
        "client disconnected before sending the whole request body: %s %s",
        request.method,
        request.url.path,
    )
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def install_error_handlers(app: FastAPI) -> None:
    """404 for unknown ids, 503 (with ``Retry-After``) before a model is served, 409 for
    a failed load, 499 for a client that disconnected mid-body."""
    app.add_exception_handler(NotFoundError, _handler(404))
    app.add_exception_handler(ModelNotFoundError, _handler(404))
    app.add_exception_handler(NotReadyError, _not_ready)
    app.add_exception_handler(ModelLoadError, _handler(409))
    app.add_exception_handler(InvalidNameError, _invalid_name)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
