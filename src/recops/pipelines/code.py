"""The identity of a component's code: what must change for its cached results to go stale.

``code_hash(fn, version, code_deps)`` is the sha256 of, in this order:

1. the component function's **syntax tree** (``ast.dump`` of its ``def``, without
   its decorators and docstrings), so reformatting, comments and docstrings do not
   invalidate a cache but any change of the code does;
2. the syntax trees of the **helpers** it uses from its own module: every function
   or class of that module that the function names (read off its bytecode, through
   nested functions and comprehensions), transitively, and the ``repr`` of every
   plain constant of that module it names (numbers, strings, tuples of them);
3. for each module of ``code_deps`` (e.g. ``"recops.models.two_tower"``), the bytes of
   every ``.py`` file of that module or package, so a component declares which
   library code its results depend on (training depends on the model's code);
4. the ``version`` string given to ``@component(version=...)``: bump it to invalidate
   results for a reason the above cannot see (data files, other libraries);
5. the Python ``major.minor`` (the syntax tree's shape depends on it).

Without source (a function built at run time) the function's bytecode and constants
stand in for 1. Library versions outside ``code_deps`` are *not* part of the identity.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

_PLAIN = (int, float, str, bytes, bool, type(None))


class _StripDocstrings(ast.NodeTransformer):
    def _strip(self, node: Any) -> Any:
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    visit_FunctionDef = _strip
    visit_AsyncFunctionDef = _strip
    visit_ClassDef = _strip


def syntax_tree(obj: Any) -> str:
    """``ast.dump`` of a function's or class's definition, decorators and docstrings removed."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is None:
            raise TypeError(f"no source and no bytecode for {obj!r}") from None
        return _bytecode(code)
    node = ast.parse(source).body[0]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        node.decorator_list = []
    return ast.dump(_StripDocstrings().visit(node))


def _bytecode(code: types.CodeType) -> str:
    parts = [code.co_code.hex(), repr(code.co_names)]
    for const in code.co_consts:
        parts.append(_bytecode(const) if isinstance(const, types.CodeType) else repr(const))
    return "|".join(parts)


def _names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _codes(obj: Any) -> Iterator[types.CodeType]:
    if isinstance(obj, type):
        for member in vars(obj).values():
            func = getattr(member, "__func__", member)
            if isinstance(func, types.FunctionType):
                yield func.__code__
    elif isinstance(obj, types.FunctionType):
        yield obj.__code__


def _is_plain(value: Any) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def helpers(fn: Callable[..., Any]) -> tuple[list[Any], dict[str, str]]:
    """Functions/classes of ``fn``'s module it uses (transitively) and plain constants it reads."""
    module = fn.__module__
    namespace = getattr(fn, "__globals__", {})
    seen: dict[int, Any] = {}
    constants: dict[str, str] = {}
    todo: list[Any] = [fn]
    while todo:
        obj = todo.pop()
        for code in _codes(obj):
            for name in _names(code):
                value = namespace.get(name)
                if value is None or id(value) in seen or value is fn:
                    continue
                if isinstance(value, types.FunctionType | type) and value.__module__ == module:
                    seen[id(value)] = value
                    todo.append(value)
                elif _is_plain(value) and not name.startswith("__"):
                    constants[name] = repr(value)
    found = sorted(seen.values(), key=lambda v: v.__qualname__)
    return found, constants


def module_source_hash(name: str) -> str:
    """sha256 of every ``.py`` file of module or package ``name`` (paths and bytes)."""
    module = importlib.import_module(name)
    file = getattr(module, "__file__", None)
    if file is None:
        raise ValueError(f"code_deps: module {name!r} has no source file to hash")
    path = Path(file)
    files: Iterable[Path] = (
        sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    )
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(path.parent).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def code_hash(
    fn: Callable[..., Any], version: str | None = None, code_deps: Iterable[str] = ()
) -> str:
    """The code identity of a component function (see the module docstring)."""
    found, constants = helpers(fn)
    digest = hashlib.sha256()
    for part in (
        syntax_tree(fn),
        *(f"{h.__qualname__}={syntax_tree(h)}" for h in found),
        *(f"{k}={v}" for k, v in sorted(constants.items())),
        *(f"{m}:{module_source_hash(m)}" for m in sorted(set(code_deps))),
        f"version={version or ''}",
        f"python={sys.version_info.major}.{sys.version_info.minor}",
    ):
        digest.update(part.encode("utf-8") + b"\n")
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    """The code a run ran: recops' version, Python's, and the git commit of recops' source.

    ``git`` is the commit of the checkout recops is imported from (None for an
    installed wheel), ``dirty`` whether tracked files differ from it.
    """
    import platform
    import subprocess
    from importlib import metadata

    try:
        version: str | None = metadata.version("recops")
    except metadata.PackageNotFoundError:
        version = None
    source = Path(__file__).resolve().parents[1]
    commit: str | None = None
    dirty: bool | None = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip() or None  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no", "."],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"recops": version, "python": platform.python_version(), "git": commit, "dirty": dirty}
