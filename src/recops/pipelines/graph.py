"""``@pipeline``: a Python function that wires components; tracing it gives the step graph.

An executor calls the pipeline function once, with its parameters, while a
:class:`Tracer` is active: every component call then records a :class:`Step` and
returns :class:`StepOutput` handles (one, or a :class:`StepOutputs` of several that
unpacks like the tuple the function returns) instead of running. Handles are what
later calls take as their artifact inputs; every other argument is a parameter and
must be a JSON value (or a pydantic model, stored as JSON). Plain Python around the
calls — ``if config.ope:``, loops over a list of settings — runs at trace time, so a
pipeline reads like the Python it is; what it cannot do is branch on a step's
*result* (that is a step's job).

Called outside an executor, a pipeline function is just Python: its components run
in-process, one after the other, with no store and no cache.

:func:`previous` looks up, at trace time, the artifact an earlier successful run of
the same pipeline produced (the training pipeline compares today's data with the
last run's statistics this way).
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from pydantic import TypeAdapter, ValidationError

from recops.pipelines.artifacts import ArtifactRef
from recops.pipelines.codecs import dumps
from recops.pipelines.component import Component, bind, check_step_name


@dataclass(frozen=True)
class StepOutput:
    """A handle to one output of a traced step."""

    step: str
    name: str
    type: Any

    def __repr__(self) -> str:
        return f"<output {self.name!r} of step {self.step!r}>"


class StepOutputs:
    """The outputs of a step with several: ``out.model``, ``out["model"]``, or unpacked."""

    def __init__(self, outputs: dict[str, StepOutput]) -> None:
        self._outputs = outputs

    def __getattr__(self, name: str) -> StepOutput:
        outputs = self.__dict__.get("_outputs", {})
        if name not in outputs:
            raise AttributeError(f"no output {name!r} (outputs: {', '.join(outputs)})")
        return outputs[name]

    def __getitem__(self, name: str) -> StepOutput:
        return self.__getattr__(name)

    def __iter__(self) -> Iterator[StepOutput]:
        return iter(self._outputs.values())


Input = StepOutput | ArtifactRef


@dataclass
class Step:
    """One call of a component in a traced pipeline.

    Parameters
    ----------
    name:
        Unique in the pipeline (the component's name, ``-2``, ``-3``... when repeated).
    component:
        What runs.
    params:
        Non-artifact arguments as JSON values, defaults included.
    inputs:
        Artifact arguments: outputs of earlier steps, or existing artifacts.
    """

    name: str
    component: Component
    params: dict[str, Any]
    inputs: dict[str, Input]

    def upstream(self) -> list[str]:
        """Names of the steps this one reads outputs of."""
        return sorted({i.step for i in self.inputs.values() if isinstance(i, StepOutput)})


@dataclass
class Graph:
    """A traced pipeline: its steps in a valid execution order, and its outputs."""

    pipeline: str
    ref: str
    params: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, StepOutput] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        """The step called ``name``; KeyError listing the steps."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r} in pipeline {self.pipeline!r}: {self.names()}")

    def names(self) -> list[str]:
        """Step names in execution order."""
        return [s.name for s in self.steps]


class History(Protocol):
    """Where :func:`previous` finds earlier runs (the run store)."""

    def previous_output(
        self, pipeline: str, step: str, output: str, before: float | None = None
    ) -> str | None:
        """Digest of ``step``'s ``output`` in the latest successful run, or None."""


class Tracer:
    """Records the steps of one pipeline call."""

    def __init__(self, graph: Graph, history: History | None, before: float | None) -> None:
        self.graph = graph
        self.history = history
        self.before = before
        self._produced: set[int] = set()

    def add_step(
        self, component: Component, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> StepOutput | StepOutputs | None:
        sig = component.signature()
        arguments = bind(component, args, kwargs)
        params: dict[str, Any] = {}
        inputs: dict[str, Input] = {}
        for name, value in arguments.items():
            if isinstance(value, StepOutputs):
                raise TypeError(
                    f"step {component.name!r}, argument {name!r}: pick one output of a step "
                    "with several (e.g. `result.model`)"
                )
            if isinstance(value, StepOutput | ArtifactRef):
                if isinstance(value, StepOutput) and id(value) not in self._produced:
                    raise ValueError(
                        f"step {component.name!r}, argument {name!r}: {value!r} belongs to "
                        "another pipeline"
                    )
                inputs[name] = value
            else:
                params[name] = _json_parameter(component.name, name, sig.parameters[name], value)
        step = Step(self._unique(component.name), component, params, inputs)
        self.graph.steps.append(step)
        outputs = {n: StepOutput(step.name, n, tp) for n, tp in sig.outputs.items()}
        self._produced.update(id(o) for o in outputs.values())
        if not outputs:
            return None
        if sig.named_tuple is None:
            return next(iter(outputs.values()))
        return StepOutputs(outputs)

    def _unique(self, name: str) -> str:
        taken = set(self.graph.names())
        if name not in taken:
            return name
        k = 2
        while f"{name}-{k}" in taken:
            k += 1
        return check_step_name(f"{name}-{k}")


def _json_parameter(step: str, name: str, annotation: Any, value: Any) -> Any:
    def found_handle(v: Any) -> bool:
        if isinstance(v, StepOutput | StepOutputs | ArtifactRef):
            return True
        if isinstance(v, dict):
            return any(found_handle(x) for x in v.values())
        return isinstance(v, list | tuple) and any(found_handle(x) for x in v)

    if found_handle(value):
        raise TypeError(
            f"step {step!r}, argument {name!r}: pass a step's output as an argument of its "
            "own, not inside a list or dict"
        )
    try:
        plain = TypeAdapter(annotation).dump_python(value, mode="json")
        dumps(plain)
    except (ValueError, TypeError) as err:
        raise TypeError(
            f"step {step!r}, parameter {name!r}: parameters must be JSON values or pydantic "
            f"models ({err})"
        ) from None
    return plain


_TRACER: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "recops_pipeline_tracer", default=None
)


def current_tracer() -> Tracer | None:
    """The tracer of the pipeline being traced in this context, if any."""
    return _TRACER.get()


def previous(step: str, output: str = "output") -> ArtifactRef | None:
    """In a pipeline being traced: ``step``'s ``output`` from the last successful run.

    Returns None outside a trace, without a run store, or before any successful run.
    """
    tracer = current_tracer()
    if tracer is None or tracer.history is None:
        return None
    digest = tracer.history.previous_output(tracer.graph.pipeline, step, output, tracer.before)
    if digest is None:
        return None
    return ArtifactRef(digest, origin=f"previous run of {tracer.graph.pipeline}: {step}.{output}")


@dataclass(frozen=True, eq=False)
class Pipeline:
    """A pipeline function with its name; :meth:`trace` gives its :class:`Graph`."""

    fn: Callable[..., Any]
    name: str

    def __post_init__(self) -> None:
        check_step_name(self.name)

    @property
    def ref(self) -> str:
        """``module:qualname``: how ``resume`` and containers import this pipeline."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` validated against the function's annotations (JSON-able values back)."""
        hints = typing.get_type_hints(self.fn)
        sig = inspect.signature(self.fn)
        unknown = set(params) - set(sig.parameters)
        if unknown:
            raise TypeError(
                f"pipeline {self.name!r} has no parameter(s) {', '.join(sorted(unknown))} "
                f"(it takes {', '.join(sig.parameters) or 'none'})"
            )
        values: dict[str, Any] = {}
        for name, p in sig.parameters.items():
            if name not in params:
                if p.default is p.empty:
                    raise TypeError(f"pipeline {self.name!r} needs parameter {name!r}")
                values[name] = p.default
                continue
            annotation = hints.get(name, Any)
            try:
                values[name] = TypeAdapter(annotation).validate_python(params[name])
            except ValidationError as err:
                raise ValueError(f"pipeline {self.name!r}, parameter {name!r}: {err}") from None
        return values

    def trace(
        self,
        params: Mapping[str, Any] | None = None,
        history: History | None = None,
        before: float | None = None,
    ) -> Graph:
        """Call the function under a tracer and return the steps it wired.

        Parameters
        ----------
        params:
            The pipeline's arguments (validated by their annotations).
        history:
            Where :func:`previous` looks (a run store); None: it finds nothing.
        before:
            :func:`previous` only sees runs started before this unix time (resume).
        """
        values = self.parameters(params or {})
        hints = typing.get_type_hints(self.fn)
        plain = {
            k: TypeAdapter(hints.get(k, Any)).dump_python(v, mode="json") for k, v in values.items()
        }
        graph = Graph(self.name, self.ref, plain)
        tracer = Tracer(graph, history, before)
        token = _TRACER.set(tracer)
        try:
            returned = self.fn(**values)
        finally:
            _TRACER.reset(token)
        graph.outputs = _pipeline_outputs(self.name, returned)
        if not graph.steps:
            raise ValueError(f"pipeline {self.name!r} calls no component")
        return graph

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _pipeline_outputs(name: str, returned: Any) -> dict[str, StepOutput]:
    if returned is None:
        return {}
    if isinstance(returned, StepOutput):
        return {"output": returned}
    if isinstance(returned, Mapping) and all(isinstance(v, StepOutput) for v in returned.values()):
        return {str(k): v for k, v in returned.items()}
    raise TypeError(
        f"pipeline {name!r} must return None, a step output or a dict of step outputs "
        f"(got {type(returned).__name__})"
    )


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Mark a function that calls components as a pipeline (``@pipeline(name=...)`` too)."""

    def wrap(func: Callable[..., Any]) -> Pipeline:
        return Pipeline(func, name or func.__name__)

    return wrap(fn) if fn is not None else wrap


def load_object(ref: str) -> Any:
    """The object ``module:qualname`` names; ValueError saying what is wrong."""
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"expected 'module:name' (got {ref!r})")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import {module_name!r} for {ref!r}: {err}") from None
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module_name!r} has no {qualname!r} (from {ref!r})")
        obj = getattr(obj, part)
    return obj
