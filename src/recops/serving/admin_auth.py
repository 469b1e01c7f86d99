"""The admin API's bearer token: checked before every admin route, each refusal audited.

An admin route (``add_route(..., admin=True)``: ``/v1/admin/...``) runs only for a
request with ``Authorization: Bearer <admin_token>``. A refused request is logged on
``recops.audit`` as the admin actions are (route, method, client address, user agent,
and the request id every line has), with the status and the reason: ``missing_token``
or ``wrong_token`` (401), ``disabled`` (403: no admin token is configured). The token
presented is never logged, nor anything derived from it: a wrong token is often a
right one for something else. Each refusal also counts in
``recops_admin_refusals_total{status,reason}``, so that guessing shows on a dashboard
before anyone reads the logs.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import context
from recops.serving.logs import AUDIT, request_fields

audit = logging.getLogger(AUDIT)

_Endpoint = Callable[[Request], Awaitable[Response]]

#: Why a request was refused: (status, what the reply says).
_REFUSALS = {
    "disabled": (403, "the admin API is disabled: set RECOPS_ADMIN_TOKEN to enable it"),
    "missing_token": (401, "missing or wrong admin bearer token"),
    "wrong_token": (401, "missing or wrong admin bearer token"),
}


def _refusal(request: Request, token: str | None) -> str | None:
    """Why ``request`` may not use the admin API (a key of :data:`_REFUSALS`), or None."""
    if not token:
        return "disabled"
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return "missing_token"
    if not hmac.compare_digest(given.encode(), token.encode()):
        return "wrong_token"
    return None


def require_admin(request: Request) -> None:
    """403 when the admin API is disabled, 401 for a missing or wrong bearer token.

    Each refusal is audited and counted (see the module docstring).
    """
    ctx = context(request)
    reason = _refusal(request, ctx.settings.admin_token)
    if reason is None:
        return
    status, detail = _REFUSALS[reason]
    fields = request_fields(request)
    audit.warning(
        "admin %s %s from %s refused: %d %s",
        fields["method"],
        fields["path"],
        fields["client"],
        status,
        reason,
        extra={**fields, "actor": None, "outcome": "refused", "status": status, "reason": reason},
    )
    ctx.metrics.admin_refusals.labels(str(status), reason).inc()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    raise HTTPException(status, detail, headers=headers)


def admin_only(endpoint: _Endpoint) -> _Endpoint:
    """``endpoint``, run only after :func:`require_admin` let the request through."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        require_admin(request)
        return await endpoint(request)

    return guarded
