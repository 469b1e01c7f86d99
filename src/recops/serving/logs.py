"""The server's logs: one format for every logger, a request id per request, an access log.

* **Request ids.** :class:`RequestIds` (ASGI middleware) gives every request an id —
  the client's ``X-Request-ID`` if it sent a sane one (a proxy's), else a new one —
  returns it in the reply's ``X-Request-ID`` header, and puts it on every log line
  written while the request runs (:data:`REQUEST_ID`).
* **Format.** ``log_format = "json"``: one JSON object per line (``time``, ``level``,
  ``logger``, ``message``, ``request_id``, ``worker``, and the line's own fields,
  such as an access line's ``status``); ``"text"``: the same fields for people.
  uvicorn's loggers go through the same handler.
* **Access log** (``access_log = true``): one line per request on ``recops.access``
  with method, path, status, duration and client; off by default (a line per
  request costs about as much as a cheap request).
* **Audit.** ``recops.audit`` (admin actions: who, what, outcome) always logs at
  INFO, whatever ``log_level`` says.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import sys
import time
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recops.serving.settings import ServerSettings

#: The id of the request being served (``-`` outside one).
REQUEST_ID: ContextVar[str] = ContextVar("recops_request_id", default="-")
#: Admin actions, always at INFO.
AUDIT = "recops.audit"
#: One line per request, when ``access_log`` is on.
ACCESS = "recops.access"
#: An ``X-Request-ID`` kept from the client: short, and nothing a log could misread.
_CLIENT_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
# The attributes every LogRecord has: anything else on a record is a field of its own.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIds:
    """ASGI middleware: a request id per request, on its log lines and in its reply.

    Parameters
    ----------
    app:
        The wrapped application.
    access_log:
        Write one ``recops.access`` line per request.
    """

    def __init__(self, app: ASGIApp, access_log: bool = False) -> None:
        self.app = app
        self.access = logging.getLogger(ACCESS) if access_log else None
        # Unique across the workers and restarts of a run, cheap to make.
        self._prefix = f"{os.getpid():x}{secrets.token_hex(2)}-"
        self._count = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for key, value in scope["headers"]:
            if key == b"x-request-id" and _CLIENT_ID.match(value):
                request_id = value.decode()
                break
        if request_id is None:
            request_id = f"{self._prefix}{next(self._count):x}"
        header = (b"x-request-id", request_id.encode())
        token = REQUEST_ID.set(request_id)
        status = [0]
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access is not None:
                self._log_access(scope, status[0], time.perf_counter() - start)
            REQUEST_ID.reset(token)

    def _log_access(self, scope: Scope, status: int, seconds: float) -> None:
        assert self.access is not None
        client = scope.get("client")
        fields = {
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client[0] if client else None,
        }
        self.access.info(
            "%s %s %d %.1f ms",
            fields["method"],
            fields["path"],
            status,
            seconds * 1000,
            extra=fields,
        )


class _Context(logging.Filter):
    """Puts the request id and the worker on every record."""

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.worker = self.worker
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the standard fields, then the record's own."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


JsonFormatter.converter = time.gmtime

_TEXT = "%(asctime)s %(levelname)s %(name)s [worker %(worker)s] [%(request_id)s] %(message)s"


def configure_logging(settings: ServerSettings) -> logging.Handler:
    """Route the server's and uvicorn's loggers to stderr in the configured format.

    Called once per server process (by :func:`recops.serving.server.serve`).

    Returns
    -------
    logging.Handler
        The handler installed (tests read what it wrote).
    """
    handler = logging.StreamHandler(sys.stderr)
    worker = "-" if settings.worker_index is None else str(settings.worker_index)
    handler.addFilter(_Context(worker))
    handler.setFormatter(
        JsonFormatter() if settings.log_format == "json" else logging.Formatter(_TEXT)
    )
    level = logging.getLevelName(settings.log_level.upper())
    for name in ("recops", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler] if name in ("recops", "uvicorn") else []
        logger.propagate = name not in ("recops", "uvicorn")
        logger.setLevel(level if isinstance(level, int) else logging.WARNING)
    # Admin actions always; requests when asked for.
    logging.getLogger(AUDIT).setLevel(logging.INFO)
    logging.getLogger(ACCESS).setLevel(logging.INFO if settings.access_log else logging.WARNING)
    return handler
