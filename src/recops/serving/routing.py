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

What the spec documents is what the server does: every route may answer 400 (a
request the HTTP layer could not read), 408 (too slow to send it), 413 (a body over
the limit) and 503 (no connection free); a route with a JSON body answers 415 to any
other media type, a route with input 422 with the list of offending fields, an admin
route 401 and 403; each error body is in the spec.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar, Union, cast, get_args, get_origin
from urllib.parse import unquote_plus

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from recops.serving.admin_auth import admin_only
from recops.serving.openapi import as_openapi_30
from recops.serving.schemas import Error, NotFound, ValidationErrors

JSON = "application/json"
#: The OpenAPI security scheme of the admin routes.
BEARER = "bearerAuth"

Body = TypeVar("Body", bound=BaseModel)
Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoute(APIRoute):
    """A documented route whose endpoint takes the Request and returns a Response.

    See the module docstring for why; register one with :func:`add_route`.
    """

    #: The methods of every route of this path (``GET, HEAD, POST``), for the ``Allow``
    #: header of a 405: Starlette would list only this route's own.
    allow: str = ""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allow = self.allow or ", ".join(sorted(self.methods))
            raise HTTPException(405, "Method Not Allowed", headers={"Allow": allow})
        await self.app(scope, receive, send)


def _validation_error(exc: ValidationError, where: str) -> RequestValidationError:
    # Without the offending input and context: they may hold bytes that are not
    # UTF-8 or exception objects, which would turn a 422 into a 500.
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    return RequestValidationError([{**e, "loc": (where, *e["loc"])} for e in errors])


def _is_json(scope: Scope) -> bool:
    """Whether the request says its body is JSON: ``application/json``, UTF-8 if a charset.

    Read from the raw ASGI headers: building Starlette's ``Headers`` costs more.
    """
    for key, value in scope["headers"]:
        if key == b"content-type":
            media, _, parameters = value.partition(b";")
            if media.strip().lower() != b"application/json":
                return False
            for parameter in parameters.split(b";"):
                name, _, given = parameter.partition(b"=")
                if name.strip().lower() == b"charset":
                    return given.strip().strip(b'"').lower() in (b"utf-8", b"utf8")
            return True
    return False


def _not_json(scope: Scope) -> HTTPException:
    given = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    shown = "none" if given is None else repr(given.decode("latin-1")[:100])
    return HTTPException(
        415, f"the request body must be JSON: send Content-Type: application/json (got {shown})"
    )


async def parse_body(model: type[Body], request: Request) -> Body:
    """Validate a JSON body with pydantic in one call; 422 naming the field otherwise.

    The body must be declared ``application/json`` (a ``charset`` other than UTF-8
    is refused): anything else, a missing Content-Type included, is a 415 before the
    body is read. Those are the bodies a web page can send to any origin without a
    CORS preflight (``text/plain``, forms, a ``Blob`` without a type), so a JSON API
    that parsed them would let any page write in a visitor's name.
    """
    if not _is_json(request.scope):
        raise _not_json(request.scope)
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _validation_error(exc, "body") from None


_INTEGER = re.compile(r"-?[0-9]{1,20}")
_BOOLEANS = {"true": True, "false": False}


def _to_int(text: str) -> int | str:
    return int(text) if _INTEGER.fullmatch(text) else text


def _to_bool(text: str) -> bool | str:
    return _BOOLEANS.get(text, text)


def _to_str(text: str) -> str:
    return text


_CONVERTERS: dict[type, Callable[[str], Any]] = {bool: _to_bool, int: _to_int, str: _to_str}


def _unwrap(annotation: Any) -> tuple[bool, Any]:
    """``(is a list, scalar type)`` of a field annotation, without Optional and Annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in get_args(annotation) if a is not type(None)]
        return _unwrap(inner)
    if origin is list:
        return True, _unwrap(get_args(annotation)[0])[1]
    return False, annotation


@functools.cache
def _query_fields(model: type[BaseModel]) -> dict[str, tuple[bool, Callable[[str], Any]]]:
    """Per field of a query model: whether it is a list, and how its text converts."""
    fields = {}
    for name, field in model.model_fields.items():
        is_list, scalar = _unwrap(field.annotation)
        if scalar not in _CONVERTERS:
            raise TypeError(f"query field {model.__name__}.{name} must be str, int or bool")
        fields[name] = (is_list, _CONVERTERS[scalar])
    return fields


def _query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """``key=value`` pairs of a query string, percent-decoded, blanks kept.

    What starlette's ``QueryParams`` gives (latin-1 text, then ``parse_qsl``), at a
    fraction of its cost on the hot route: only pairs with ``%`` or ``+`` are decoded.
    """
    pairs = []
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:
            key, value = unquote_plus(key), unquote_plus(value)
        pairs.append((key, value))
    return pairs


def parse_query(model: type[Body], request: Request) -> Body:
    """Validate the query string as ``model``; list fields take repeated keys.

    Text converts to the field's type first, then validates as strictly as a JSON
    body: an integer is decimal digits with an optional minus (``10``, not ``10.0``,
    ``1e1`` or ``true``), a boolean is ``true`` or ``false`` (not ``1`` or ``yes``).
    """
    params = _query_pairs(request.scope.get("query_string", b""))
    fields = _query_fields(model)
    values: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    for name, text in params:
        field = fields.get(name)
        if field is None:
            unknown.setdefault(name, text)
            continue
        is_list, convert = field
        if is_list:
            values.setdefault(name, []).append(convert(text))
        elif name not in values:  # the first of repeated keys, as starlette's QueryParams
            values[name] = convert(text)
    try:
        if unknown:
            # The same error a body with an unknown key gets (models forbid extras).
            first = min(unknown)
            model.model_validate({**values, first: unknown[first]})
        return model.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc, "query") from None


def parse_headers(model: type[Body], request: Request) -> Body:
    """Validate the request headers named by ``model``'s field aliases; other headers pass."""
    headers = request.headers
    values = {
        field.alias: headers[field.alias]
        for field in model.model_fields.values()
        if field.alias is not None and field.alias in headers
    }
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc, "header") from None


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


def parameters_doc(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    """OpenAPI parameters (``where``: ``query``, ``header`` or ``path``) of a model's fields.

    For a route that parses ``model`` with :func:`parse_query` or :func:`parse_headers`.
    """
    if where == "query":
        _query_fields(model)  # a type parse_query cannot convert fails here, at start-up
    schema = inline_refs(model.model_json_schema())
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": where,
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "description"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def parse_path(model: type[Body], request: Request) -> Body:
    """Validate the path's ``{parameters}`` as ``model``; 422 naming the parameter otherwise."""
    try:
        return model.model_validate(request.path_params)
    except ValidationError as exc:
        raise _validation_error(exc, "path") from None


Responses = dict[int | str, dict[str, Any]]

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
#: What may answer on any route before it runs: the request guard (JSON), uvicorn and
#: the connection protocol of :mod:`recops.serving.connections` (text).
_ANY_ROUTE: Responses = {
    400: {
        "description": (
            "A request the server could not read: an invalid Content-Length (JSON), or "
            "malformed HTTP, e.g. a request line over 64 KiB (text/plain, from uvicorn)."
        ),
        "model": Error,
        "content": _TEXT,
    },
    408: {
        "description": (
            "The headers or the body did not arrive within the server's deadlines "
            "(`header_timeout_s`, `body_timeout_s`); the connection is closed (text/plain)."
        ),
        "content": _TEXT,
    },
    413: {
        "description": "Request body over the server's limit (`max_body_bytes`).",
        "model": Error,
    },
    503: {
        "description": (
            "Every connection of the worker is inside a request (`max_connections`): "
            "retry after `Retry-After` seconds (text/plain)."
        ),
        "content": _TEXT,
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
_ADMIN_ERRORS: Responses = {
    401: {
        "description": "Missing or wrong token.",
        "model": Error,
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    403: {"description": "Admin API disabled.", "model": Error},
}
_INPUT_ERRORS: Responses = {
    422: {
        "description": "Invalid input; `detail` names each offending field.",
        "model": ValidationErrors,
    },
}
_BODY_ERRORS: Responses = {
    415: {"description": "The body is not declared `application/json` (UTF-8).", "model": Error},
}


def _documented(own: Responses) -> Responses:
    """A route's answers with those of any route, each error with its body.

    A route's own error without a ``model`` gets the JSON error body (a 404 may name
    the unknown id). A status both give keeps both media types and descriptions.
    """
    out: Responses = dict(_ANY_ROUTE)
    for status, response in own.items():
        if str(status).startswith(("4", "5")) and "model" not in response:
            response = {**response, "model": NotFound if str(status) == "404" else Error}
        common = out.get(status)
        if common is not None:
            response = {
                **response,
                "description": f"{response.get('description', '')} Or: {common['description']}",
                "content": {**common.get("content", {}), **response.get("content", {})},
                "headers": {**common.get("headers", {}), **response.get("headers", {})},
            }
        out[status] = response
    return out


def add_route(
    app: FastAPI,
    path: str,
    endpoint: Endpoint,
    *,
    methods: list[str],
    tags: list[str],
    summary: str | None = None,
    response: type[BaseModel] | None = None,
    media_type: str = JSON,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    header: type[BaseModel] | None = None,
    path_params: type[BaseModel] | None = None,
    responses: Responses | None = None,
    admin: bool = False,
    name: str | None = None,
    include_in_schema: bool = True,
) -> None:
    """Register ``endpoint`` as a documented :class:`DirectRoute`.

    Parameters
    ----------
    body, query, header, path_params:
        The model the endpoint parses from the JSON body (:func:`parse_body`), the
        query string (:func:`parse_query`), the headers (:func:`parse_headers`) or
        the path's ``{parameters}`` (:func:`parse_path`); documented in OpenAPI,
        with the 415 and 422 answers they bring.
    response:
        The model of the 200 reply (documentation; the endpoint serialises it).
    media_type:
        The 200 reply's media type, when it is not JSON (documented as text).
    responses:
        The route's own other answers (status: ``{"description": ...}``); an error
        without a ``model`` is documented with the server's error body.
    admin:
        Require the admin bearer token before the endpoint runs; refusals are
        audited and counted (:mod:`recops.serving.admin_auth`).
    """
    extra: dict[str, Any] = {}
    documented = _documented(responses or {})
    parameters: list[dict[str, Any]] = []
    if body is not None:
        extra.update(body_doc(body))
        documented.update(_BODY_ERRORS)
    if query is not None:
        parameters += parameters_doc(query, "query")
    if header is not None:
        parameters += parameters_doc(header, "header")
    if path_params is not None:
        parameters += parameters_doc(path_params, "path")
    if parameters:
        extra["parameters"] = parameters
    if body is not None or parameters:
        documented.update(_INPUT_ERRORS)
    if admin:
        endpoint = admin_only(endpoint)
        extra["security"] = [{BEARER: []}]
        documented.update(_ADMIN_ERRORS)
    response_class: type[Response] = JSONResponse
    if media_type != JSON:
        # No JSON entry for the 200 reply; errors stay documented as JSON.
        response_class = Response
        text = {media_type: {"schema": {"type": "string"}}}
        documented[200] = {"description": "Successful Response", "content": text}
    app.router.add_api_route(
        path,
        endpoint,
        methods=methods,
        tags=list(tags),
        summary=summary,
        name=name,
        response_model=response,
        response_class=response_class,
        responses=documented,
        openapi_extra=extra or None,
        include_in_schema=include_in_schema,
        route_class_override=DirectRoute,
    )
    _share_allow(app, path)


def _share_allow(app: FastAPI, path: str) -> None:
    """Give every direct route of ``path`` the methods of them all, for a 405's ``Allow``."""
    routes = [r for r in app.router.routes if isinstance(r, DirectRoute) and r.path == path]
    allow = ", ".join(sorted({m for r in routes for m in r.methods or ()}))
    for route in routes:
        route.allow = allow


def install_openapi(app: FastAPI) -> None:
    """Generate the spec once, with the admin routes' bearer scheme declared.

    Written as OpenAPI 3.0, whose integers are what the strict API takes (see
    :mod:`recops.serving.openapi`).
    """

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
            app.openapi_schema = as_openapi_30(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
