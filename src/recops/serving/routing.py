"""The one way routes are registered: :func:`add_route`, a documented direct route.

Why direct: FastAPI's own request handling (dependency solving, ``json.loads``, then
validation, then serialising the return value) cost about 100 µs of a ~250 µs
recommendation in a profile. A :class:`DirectRoute` calls its endpoint with the
:class:`~starlette.requests.Request` and sends back the
:class:`~starlette.responses.Response` it returns; the endpoint parses its input with
:func:`parse_body` / :func:`parse_query` (one pydantic-core call, the same 422 reply
FastAPI gives) and builds its reply with :func:`json_response`. Exception handlers
still apply, and the OpenAPI entry is generated from the models passed to
:func:`add_route`. ``benchmarks/serving.py`` measures what this saves: ``/v1/ceiling``
is a direct route and ``/v1/ceiling/standard`` the same reply written the usual
FastAPI way.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast, get_args, get_origin

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from recops.serving.context import context

JSON = "application/json"
#: The OpenAPI security scheme of the admin routes.
BEARER = "bearerAuth"

Body = TypeVar("Body", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoute(APIRoute):
    """A documented route whose endpoint takes the Request and returns a Response.

    See the module docstring for why; register one with :func:`add_route`.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)


def _validation_error(exc: ValidationError, where: str) -> RequestValidationError:
    # Without the offending input and context: they may hold bytes that are not
    # UTF-8 or exception objects, which would turn a 422 into a 500.
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    return RequestValidationError([{**e, "loc": (where, *e["loc"])} for e in errors])


async def parse_body(model: type[Body], request: Request) -> Body:
    """Validate a JSON body with pydantic in one call; 422 naming the field otherwise."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _validation_error(exc, "body") from None


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(get_origin(a) is list for a in get_args(annotation))


def parse_query(model: type[Body], request: Request) -> Body:
    """Validate the query string as ``model``; list fields take repeated keys."""
    params = request.query_params
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name not in params:
            continue
        values[name] = params.getlist(name) if _is_list(field.annotation) else params[name]
    unknown = sorted(set(params) - set(model.model_fields))
    try:
        if unknown:
            # The same error a body with an unknown key gets (models forbid extras).
            model.model_validate({**values, unknown[0]: params[unknown[0]]})
        return model.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc, "query") from None


def json_response(reply: BaseModel, status_code: int = 200) -> Response:
    """``reply`` serialised by pydantic-core, as ``application/json``."""
    return Response(reply.model_dump_json(), status_code=status_code, media_type=JSON)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``{"$ref": "#/$defs/X"}`` by the definition of X, everywhere."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body of a route that parses ``model`` with :func:`parse_body`.

    The schema is inlined, nested models included (the request models are not
    recursive), so the spec needs no extra ``components`` entries.
    """
    schema = inline_refs(model.model_json_schema())
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


def query_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI query parameters of a route that parses ``model`` with :func:`parse_query`."""
    schema = inline_refs(model.model_json_schema())
    required = set(schema.get("required", ()))
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]
    return {"parameters": parameters}


def require_admin(request: Request) -> None:
    """403 when the admin API is disabled, 401 for a missing or wrong bearer token."""
    token = context(request).settings.admin_token
    if not token:
        raise HTTPException(403, "the admin API is disabled: set RECOPS_ADMIN_TOKEN to enable it")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401, "missing or wrong admin bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def _admin_only(endpoint: Endpoint) -> Endpoint:
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        require_admin(request)
        return await endpoint(request)

    return guarded


_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong token."},
    403: {"description": "Admin API disabled."},
}
_INPUT_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid input; `detail` names each offending field."},
}
_BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"description": "Request body too large."},
}


def add_route(
    app: FastAPI,
    path: str,
    endpoint: Endpoint,
    *,
    methods: list[str],
    tags: list[str],
    summary: str | None = None,
    response: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int | str, dict[str, Any]] | None = None,
    admin: bool = False,
    name: str | None = None,
    include_in_schema: bool = True,
) -> None:
    """Register ``endpoint`` as a documented :class:`DirectRoute`.

    Parameters
    ----------
    body, query:
        The model the endpoint parses from the JSON body (:func:`parse_body`) or
        the query string (:func:`parse_query`); documented in OpenAPI.
    response:
        The model of the 200 reply (documentation; the endpoint serialises it).
    admin:
        Require the admin bearer token before the endpoint runs.
    """
    extra: dict[str, Any] = {}
    documented: dict[int | str, dict[str, Any]] = dict(responses or {})
    if body is not None:
        extra.update(body_doc(body))
        documented.update(_BODY_ERRORS)
    if query is not None:
        extra.update(query_doc(query))
    if body is not None or query is not None:
        documented.update(_INPUT_ERRORS)
    if admin:
        endpoint = _admin_only(endpoint)
        extra["security"] = [{BEARER: []}]
        documented.update(_ADMIN_ERRORS)
    app.router.add_api_route(
        path,
        endpoint,
        methods=methods,
        tags=list(tags),
        summary=summary,
        name=name,
        response_model=response,
        responses=documented,
        openapi_extra=extra or None,
        include_in_schema=include_in_schema,
        route_class_override=DirectRoute,
    )


def install_openapi(app: FastAPI) -> None:
    """Generate the spec once, with the admin routes' bearer scheme declared."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[BEARER] = {
                "type": "http",
                "scheme": "bearer",
                "description": "The admin token (RECOPS_ADMIN_TOKEN).",
            }
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
