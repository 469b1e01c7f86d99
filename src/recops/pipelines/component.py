"""``@component``: a typed Python function that is one step of a pipeline.

A component is an ordinary function; its parameters and return value are annotated.
Called outside a pipeline it runs as the plain function it is. Called while a
:func:`~recops.pipelines.graph.pipeline` is traced, it adds a step and returns
handles to the step's outputs instead (see :mod:`recops.pipelines.graph`).

Outputs come from the return annotation: ``T`` is one output named ``output``; a
``typing.NamedTuple`` class names several outputs (its fields); ``None`` none.
``T | None`` is an output that may be absent. Every output is stored with the codec
of its type (:mod:`recops.pipelines.codecs`).

>>> import pandas as pd
>>> @component(retries=2, timeout_s=600)
... def count_clicks(events: pd.DataFrame) -> dict[str, int]:
...     return {"clicks": int((events["event"] == "click").sum())}
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, overload

from recops.pipelines.code import code_hash

#: Step names are task names in Kubeflow too: letters, digits, '_' and '-'.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
SINGLE_OUTPUT = "output"


def check_step_name(name: str) -> str:
    """``name`` if it is a valid step name, else ValueError saying what is allowed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"a step name must be 1-63 letters, digits, '_' or '-', starting with a letter "
            f"(got {name!r})"
        )
    return name


@dataclass(frozen=True)
class ComponentOptions:
    """How executors run a component's step.

    Parameters
    ----------
    retries:
        Extra attempts after a failure (0: fail at the first error).
    retry_delay_s:
        Wait before the first retry; doubled before each next one.
    retry_on:
        Exception types that are retried; others fail the step at once.
    timeout_s:
        Wall-clock limit of one attempt; ``None`` for none. A step past it fails with
        :class:`~recops.pipelines.execution.StepTimeout` (and may be retried).
    cache:
        Whether the step may be skipped when its cache key was seen before.
    cpus:
        CPUs a step needs (Ray task resources, Kubeflow CPU limit).
    memory_gb:
        Memory limit in GiB for Kubeflow (``None``: the cluster default).
    """

    retries: int = 0
    retry_delay_s: float = 1.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout_s: float | None = None
    cache: bool = True
    cpus: float = 1.0
    memory_gb: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"`retries` must be an int >= 0 (got {self.retries!r})")
        if self.retry_delay_s < 0:
            raise ValueError(f"`retry_delay_s` must be >= 0 (got {self.retry_delay_s!r})")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ValueError(f"`timeout_s` must be > 0 or None (got {self.timeout_s!r})")
        if not self.cpus > 0:
            raise ValueError(f"`cpus` must be > 0 (got {self.cpus!r})")
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in self.retry_on):
            raise ValueError(f"`retry_on` must be exception types (got {self.retry_on!r})")


@dataclass(frozen=True)
class Signature:
    """A component's parameters and outputs with their (resolved) annotations."""

    parameters: dict[str, Any]
    defaults: dict[str, Any]
    outputs: dict[str, Any]
    named_tuple: type | None


def _is_named_tuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


@dataclass(frozen=True, eq=False)
class Component:
    """A step function with its name, code identity inputs and run options.

    Build it with :func:`component`; :meth:`with_options` gives a variant.

    Parameters
    ----------
    fn:
        The function.
    name:
        The step name (default: the function's name).
    version:
        Bumped by hand to invalidate cached results (see :mod:`recops.pipelines.code`).
    code_deps:
        Modules whose source is part of the code identity.
    fingerprint:
        Called with the step's parameters before a cache lookup; returns a string
        identifying the outside state the step reads (a file's hash, the last id of
        an event log), so new data there is a cache miss. ``None``: the parameters
        and inputs say everything.
    options:
        Retries, timeout, cache, resources.
    """

    fn: Callable[..., Any]
    name: str
    version: str | None = None
    code_deps: tuple[str, ...] = ()
    fingerprint: Callable[..., str | None] | None = None
    options: ComponentOptions = field(default_factory=ComponentOptions)

    def __post_init__(self) -> None:
        check_step_name(self.name)
        params = inspect.signature(self.fn).parameters.values()
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            raise TypeError(f"component {self.name!r}: *args and **kwargs are not supported")

    @property
    def ref(self) -> str:
        """``module:qualname``: how a worker or a container imports this component."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def signature(self) -> Signature:
        """Parameter and output annotations, resolved (forward references evaluated)."""
        try:
            hints = typing.get_type_hints(self.fn)
        except NameError as err:
            raise TypeError(
                f"component {self.name!r}: cannot resolve an annotation ({err}); import the "
                "types it names at module level, not under TYPE_CHECKING"
            ) from None
        sig = inspect.signature(self.fn)
        missing = [p for p in sig.parameters if p not in hints]
        if missing or "return" not in hints:
            raise TypeError(
                f"component {self.name!r}: annotate every parameter and the return value "
                f"(missing: {', '.join([*missing, *([] if 'return' in hints else ['return'])])})"
            )
        params = {p: hints[p] for p in sig.parameters}
        defaults = {p.name: p.default for p in sig.parameters.values() if p.default is not p.empty}
        ret = hints["return"]
        if ret is type(None):
            return Signature(params, defaults, {}, None)
        if _is_named_tuple(ret):
            return Signature(params, defaults, dict(typing.get_type_hints(ret)), ret)
        return Signature(params, defaults, {SINGLE_OUTPUT: ret}, None)

    def code_hash(self) -> str:
        """The code identity of this component now (see :mod:`recops.pipelines.code`)."""
        return code_hash(self.fn, self.version, self.code_deps)

    def with_options(self, *, name: str | None = None, **options: Any) -> Component:
        """A copy with another step name and/or other :class:`ComponentOptions` fields."""
        unknown = set(options) - {f.name for f in dataclasses.fields(ComponentOptions)}
        if unknown:
            raise TypeError(f"unknown component option(s): {', '.join(sorted(unknown))}")
        return replace(self, name=name or self.name, options=replace(self.options, **options))

    def split_outputs(self, result: Any) -> dict[str, Any]:
        """The function's return value as ``{output name: value}``."""
        sig = self.signature()
        if not sig.outputs:
            return {}
        if sig.named_tuple is None:
            return {SINGLE_OUTPUT: result}
        if not isinstance(result, tuple) or len(result) != len(sig.outputs):
            raise TypeError(
                f"component {self.name!r} must return a {sig.named_tuple.__name__} "
                f"(got {type(result).__name__})"
            )
        return dict(zip(sig.outputs, result, strict=True))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from recops.pipelines.graph import current_tracer

        tracer = current_tracer()
        if tracer is None:
            return self.fn(*args, **kwargs)
        return tracer.add_step(self, args, kwargs)


@overload
def component(fn: Callable[..., Any], /) -> Component: ...


@overload
def component(
    *,
    name: str | None = None,
    version: str | None = None,
    code_deps: tuple[str, ...] | list[str] = (),
    fingerprint: Callable[..., str | None] | None = None,
    retries: int = 0,
    retry_delay_s: float = 1.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    timeout_s: float | None = None,
    cache: bool = True,
    cpus: float = 1.0,
    memory_gb: float | None = None,
) -> Callable[[Callable[..., Any]], Component]: ...


def component(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    code_deps: tuple[str, ...] | list[str] = (),
    fingerprint: Callable[..., str | None] | None = None,
    **options: Any,
) -> Component | Callable[[Callable[..., Any]], Component]:
    """Mark a typed function as a pipeline component (``@component`` or ``@component(...)``).

    Keyword arguments are :class:`Component` fields (``name``, ``version``,
    ``code_deps``, ``fingerprint``) and :class:`ComponentOptions` fields (``retries``,
    ``retry_delay_s``, ``retry_on``, ``timeout_s``, ``cache``, ``cpus``, ``memory_gb``).
    """

    def wrap(func: Callable[..., Any]) -> Component:
        return Component(
            fn=func,
            name=name or func.__name__,
            version=version,
            code_deps=tuple(code_deps),
            fingerprint=fingerprint,
            options=ComponentOptions(**options),
        )

    return wrap(fn) if fn is not None else wrap


def bind(component: Component, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The call's arguments by name, defaults filled in; TypeError when they do not fit."""
    try:
        bound = inspect.signature(component.fn).bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"component {component.name!r}: {err}") from None
    bound.apply_defaults()
    return dict(bound.arguments)
