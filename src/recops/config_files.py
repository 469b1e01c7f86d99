"""Config files (TOML, YAML, JSON) read with the line of every key, for messages that point.

Every recops config is a pydantic model; pydantic says which field is wrong, the file
says where it is. :func:`parse_config_text` returns the values and a map from each
key's path (``("variants", 1, "weight")``) to its line, and :func:`where` turns a
pydantic error location into ``file, line 14, field 'variants[1].weight'``. The
experiment configs (:mod:`recops.experiments.config`) and the pipeline and controller
configs (:mod:`recops.pipelines.training.config`) both use it.

tomllib gives no positions, so a TOML document's headers and ``key =`` lines are
scanned (keys inside inline tables and multi-line arrays map to the line of their
outer key); YAML's nodes carry their marks, and a key given twice (which PyYAML would
silently resolve to the last) is refused; JSON keys get no lines (its parser gives
positions for syntax errors only).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import yaml
from pydantic import ValidationError

#: The line of each key of a document, by its path.
Lines = dict[tuple[str | int, ...], int]

Format = Literal["toml", "yaml", "json"]


def parse_config_text(
    text: str, fmt: Format, source: str, error: type[Exception] = ValueError
) -> tuple[Any, Lines]:
    """The values of a document and the line of each key; ``error`` naming ``source``.

    Syntax errors are raised as ``error`` with the line where the parser gives one.
    """
    if fmt == "toml":
        try:
            values: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib puts the position in the message: "... (at line 3, column 1)".
            raise error(f"{source}: not valid TOML: {exc}") from None
        return values, _toml_lines(text)
    if fmt == "json":
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise error(f"{source}, line {exc.lineno}: not valid JSON: {exc.msg}") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            values = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f", line {mark.line + 1}" if mark is not None else ""
        raise error(f"{source}{at}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from None
    lines: Lines = {}
    if node is not None:
        _yaml_lines(node, (), lines, source, error)
    return values, lines


def field_path(loc: Sequence[str | int]) -> str:
    """``variants[1].policy.pool`` from ``("variants", 1, "policy", "pool")``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(loc: Sequence[str | int], lines: Mapping[tuple[str | int, ...], int]) -> int | None:
    """The line of the deepest part of ``loc`` the file spells out (None: not in the file)."""
    loc = tuple(loc)
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def where(
    source: str, loc: Sequence[str | int], lines: Mapping[tuple[str | int, ...], int] | None
) -> str:
    """``source, line N, field 'a.b[0]'``: the line where known, the field where any."""
    parts = [source]
    line = line_of(loc, lines or {})
    if line is not None:
        parts.append(f"line {line}")
    if loc:
        parts.append(f"field '{field_path(loc)}'")
    return ", ".join(parts)


def describe_errors(err: ValidationError, source: str, lines: Lines | None = None) -> str:
    """One line per problem: ``source, line N: field `a.b`: message (got value)``.

    The line where ``lines`` (from :func:`parse_config_text`) knows the field.
    """
    out = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        got = f" (got {problem['input']!r})" if problem["type"] != "missing" else ""
        line = line_of(problem["loc"], lines or {})
        at = f", line {line}" if line is not None else ""
        out.append(f"{source}{at}: field `{where}`: {problem['msg']}{got}")
    return "\n".join(out)


def _yaml_lines(
    node: yaml.Node,
    path: tuple[str | int, ...],
    out: Lines,
    source: str,
    error: type[Exception],
) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:  # PyYAML would silently keep the last one
                raise error(f"{source}, line {key.start_mark.line + 1}: key {name!r} appears twice")
            seen.add(name)
            _yaml_lines(value, (*path, name), out, source, error)
            out[(*path, name)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _yaml_lines(item, (*path, i), out, source, error)


_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=")


def _toml_lines(text: str) -> Lines:
    """The line of each key of a TOML document, by its path (valid TOML only).

    Headers (``[a]``, ``[[variants]]``, counted per array) and ``key =`` lines are
    scanned; keys inside inline tables and multi-line arrays map to the line of
    their outer key.
    """
    out: Lines = {}
    counts: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    depth = 0  # open brackets of a multi-line value: its lines hold no keys
    for number, line in enumerate(text.splitlines(), start=1):
        if depth == 0 and (header := _TOML_HEADER.match(line)):
            keys = tuple(k.strip().strip('"') for k in header.group(2).split("."))
            table = _resolve_table(keys, counts, is_array=header.group(1) == "[[")
            out.setdefault(table, number)
            continue
        if depth == 0 and (key := _TOML_KEY.match(line)):
            path = (*table, *(k.strip() for k in key.group(1).split(".")))
            out.setdefault(path, number)
        depth = max(0, depth + _bracket_balance(line))
    return out


def _resolve_table(
    keys: tuple[str, ...], counts: dict[tuple[str | int, ...], int], *, is_array: bool
) -> tuple[str | int, ...]:
    # `[variants.policy]` after the second `[[variants]]` is ("variants", 1, "policy").
    path: tuple[str | int, ...] = ()
    for j, key in enumerate(keys):
        path = (*path, key)
        last = j == len(keys) - 1
        if last and is_array:
            counts[path] = counts.get(path, -1) + 1
            path = (*path, counts[path])
        elif path in counts:
            path = (*path, counts[path])
    return path


def _bracket_balance(line: str) -> int:
    balance = 0
    quote = ""
    for char in line:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            balance += 1
        elif char in "]}":
            balance -= 1
    return balance
