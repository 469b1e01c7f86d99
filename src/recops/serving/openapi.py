"""The server's spec, written as OpenAPI 3.0: the dialect in which an integer is an integer.

FastAPI writes OpenAPI 3.1, whose schemas are JSON Schema 2020-12, where ``10.0`` is
an integer (since draft 6: "any number with a zero fractional part"), so a client
generated from it may send ``"k": 10.0``. The API is strict and refuses it (see
:mod:`recops.serving.schemas`). OpenAPI 3.0 schemas follow JSON Schema Wright-00,
where an integer is "a JSON number without a fraction or exponent part": exactly
what the server takes. :func:`as_openapi_30` rewrites the few 3.1 spellings pydantic
produces into their 3.0 equivalents:

- ``anyOf: [X, {type: null}]`` becomes X with ``nullable: true`` (a ``$ref`` is
  wrapped in ``allOf``, since 3.0 ignores keywords beside a ``$ref``);
- a numeric ``exclusiveMinimum``/``exclusiveMaximum`` becomes the bound with the
  boolean flag;
- ``const`` becomes a one-value ``enum``; ``info.summary`` joins ``info.description``;
  integer bounds are written as integers.
"""

from __future__ import annotations

from typing import Any

OPENAPI_VERSION = "3.0.3"
_NULL = {"type": "null"}
_EXCLUSIVE = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def as_openapi_30(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of the OpenAPI 3.1 ``spec`` in OpenAPI 3.0."""
    out: dict[str, Any] = {key: _node(value) for key, value in spec.items()}
    out["openapi"] = OPENAPI_VERSION
    info = dict(out.get("info", {}))
    summary = info.pop("summary", None)
    if summary:
        info["description"] = "\n\n".join(p for p in (summary, info.get("description")) if p)
    out["info"] = info
    return out


def _node(node: Any) -> Any:
    if isinstance(node, list):
        return [_node(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: _node(value) for key, value in node.items()}
    branches = out.get("anyOf")
    if isinstance(branches, list) and _NULL in branches:
        out = _nullable(out, [b for b in branches if b != _NULL])
    for exclusive, bound in _EXCLUSIVE.items():
        value = out.get(exclusive)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[bound], out[exclusive] = value, True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("type") == "integer":  # FastAPI's spec model stores bounds as floats
        for key in ("minimum", "maximum"):
            if isinstance(out.get(key), float) and out[key].is_integer():
                out[key] = int(out[key])
    return out


def _nullable(node: dict[str, Any], branches: list[Any]) -> dict[str, Any]:
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    if len(branches) != 1:
        return {**rest, "anyOf": branches, "nullable": True}
    (branch,) = branches
    base = {"allOf": [branch]} if "$ref" in branch else branch
    return {**base, **rest, "nullable": True}
