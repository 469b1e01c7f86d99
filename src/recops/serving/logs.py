"""The server's logs: one format for every logger, a request id per request, an access log.

* **Request ids.** :class:`RequestIds` (ASGI middleware) gives every request an id —
  the client's ``X-Request-ID`` if it sent a sane one (a proxy's: at most 64 of
  ``A-Za-z0-9._:-``), else a new one — returns it in the reply's ``X-Request-ID``
  header, and puts it on every log line written while the request runs
  (:data:`REQUEST_ID`).
* **One id per recommendation.** A served slate's exposure is joined to the clicks
  that answer it by its ``request_id``, which must therefore be unique, so the server
  makes it: :func:`unique_request_id` hands the exposure the request's own id when the
  server made that one, and otherwise (the client sent one) makes a new id that
  becomes the request's id from then on. Either way the reply's ``X-Request-ID``, the
  ``request_id`` of the reply body and of the exposure, and the log lines from the
  exposure on are one id; the client's id stays on the request's access line
  (``client_request_id``), for its correlation.
* **Format.** ``log_format = "json"``: one JSON object per line (``time``, ``level``,
  ``logger``, ``message``, ``request_id``, ``worker``, and the line's own fields,
  such as an access line's ``status``); ``"text"``: the same fields for people.
  uvicorn's loggers go through the same handler.
* **Access log** (``access_log = true``): one line per request on ``recops.access``
  with method, path, status, duration and client; off by default (a line per
  request costs about as much as a cheap request).
* **Audit.** ``recops.audit`` (admin actions: who, what, outcome; and the admin
  requests refused for their token) always logs at INFO, whatever ``log_level``
  says; :func:`request_fields` are the fields each of its lines has.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recops.serving.settings import ServerSettings

#: The id of the request being served (``-`` outside one).
REQUEST_ID: ContextVar[str] = ContextVar("recops_request_id", default="-")
#: Whether :data:`REQUEST_ID` is the client's ``X-Request-ID`` (not unique: not a join key).
_FROM_CLIENT: ContextVar[bool] = ContextVar("recops_request_id_from_client", default=False)
#: Admin actions, always at INFO.
AUDIT = "recops.audit"
#: One line per request, when ``access_log`` is on.
ACCESS = "recops.access"
#: An ``X-Request-ID`` kept from the client: short, and nothing a log could misread.
_CLIENT_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
# The attributes every LogRecord has: anything else on a record is a field of its own.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdMaker:
    """Makes request ids ``<12 random hex digits>-<counter in hex>``, unique without a UUID each.

    The prefix is drawn once per maker (per process: workers are spawned, not forked),
    so ids stay unique across workers, machines and restarts, which an exposure's id
    must be (the log refuses a second exposure with the same id).
    """

    def __init__(self) -> None:
        self._prefix = f"{secrets.token_hex(6)}-"
        self._count = itertools.count(1)

    def __call__(self) -> str:
        """A new id."""
        return f"{self._prefix}{next(self._count):x}"


def unique_request_id(make: Callable[[], str]) -> str:
    """The current request's id if the server made it, else a new one from ``make``.

    For ids that must be unique (an exposure's, which clicks join on). A client's
    ``X-Request-ID`` is kept for correlation but never used as such an id: two
    clients may send the same one. The new id then becomes the request's id: the
    reply's ``X-Request-ID`` and the log lines written from here on carry it.
    """
    request_id = REQUEST_ID.get()
    if not _FROM_CLIENT.get() and request_id != "-":
        return request_id
    made = make()
    if request_id != "-":  # inside a request (RequestIds resets both when it ends)
        REQUEST_ID.set(made)
        _FROM_CLIENT.set(False)
    return made


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
        self.make_id = RequestIdMaker()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_id = None
        for key, value in scope["headers"]:
            if key == b"x-request-id" and _CLIENT_ID.match(value):
                client_id = value.decode()
                break
        token = REQUEST_ID.set(self.make_id() if client_id is None else client_id)
        from_client = None if client_id is None else _FROM_CLIENT.set(True)
        status = [0]
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Read when the reply starts: a route may have replaced a client's id
                # by a unique one (unique_request_id).
                header = (b"x-request-id", REQUEST_ID.get().encode())
                message["headers"] = [*message.get("headers", ()), header]
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access is not None:
                self._log_access(scope, status[0], time.perf_counter() - start, client_id)
            if from_client is not None:
                _FROM_CLIENT.reset(from_client)
            REQUEST_ID.reset(token)

    def _log_access(self, scope: Scope, status: int, seconds: float, client_id: str | None) -> None:
        assert self.access is not None
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client[0] if client else None,
        }
        if client_id is not None and client_id != REQUEST_ID.get():
            fields["client_request_id"] = client_id
        self.access.info(
            "%s %s %d %.1f ms",
            fields["method"],
            fields["path"],
            status,
            seconds * 1000,
            extra=fields,
        )


def request_fields(request: Request) -> dict[str, Any]:
    """What every ``recops.audit`` line of a request says of it: route, method, who.

    ``client`` is the address (the real client's behind a trusted proxy); the
    request id comes with every line anyway. Never the request's credentials.
    """
    client = request.client
    return {
        "method": request.method,
        "path": request.scope["path"],
        "client": client.host if client else None,
        "user_agent": request.headers.get("user-agent"),
    }


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
