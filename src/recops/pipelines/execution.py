"""Running one step: its inputs read, its function called, its outputs stored.

:func:`run_step` is the one body every executor runs (in-process, in a Ray worker, in
a Kubeflow container through ``recops pipeline step``); :func:`attempts` adds the
retries and :func:`call_with_timeout` the time limit of the local executor.
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import TypeAdapter

from recops.pipelines.artifacts import ArtifactRecord
from recops.pipelines.codecs import type_name, unwrap_optional
from recops.pipelines.component import Component
from recops.pipelines.store import ArtifactStore

T = TypeVar("T")
#: Most characters of a step's log kept in the run store (the end is kept).
MAX_LOG_CHARS = 64_000


class StepTimeout(TimeoutError):
    """An attempt of a step ran past its ``timeout_s``."""


class StepError(RuntimeError):
    """A step failed after all its attempts; ``__cause__`` is the last error."""

    def __init__(self, step: str, attempts: int, error: BaseException) -> None:
        self.step = step
        self.attempts = attempts
        self.error = error
        super().__init__(f"step {step!r} failed after {attempts} attempt(s): {describe(error)}")


def describe(error: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def typed_parameters(component: Component, params: dict[str, Any]) -> dict[str, Any]:
    """JSON parameters validated back into the annotated types (pydantic models, tuples...)."""
    sig = component.signature()
    return {
        name: TypeAdapter(sig.parameters[name]).validate_python(value)
        for name, value in params.items()
    }


def store_outputs(
    component: Component, result: Any, put: Callable[[str, Any, Any], ArtifactRecord]
) -> dict[str, ArtifactRecord | None]:
    """Store each output of ``result`` with ``put(name, value, type)``; None when absent."""
    sig = component.signature()
    values = component.split_outputs(result)
    records: dict[str, ArtifactRecord | None] = {}
    for name, tp in sig.outputs.items():
        inner, optional = unwrap_optional(tp)
        value = values[name]
        if value is None:
            if not optional:
                raise TypeError(
                    f"step {component.name!r} returned None for output {name!r}, annotated "
                    f"{type_name(inner)} (annotate `{type_name(inner)} | None` if it may be absent)"
                )
            records[name] = None
        else:
            records[name] = put(name, value, inner)
    return records


def run_step(
    component: Component,
    params: dict[str, Any],
    inputs: dict[str, str | None],
    store: ArtifactStore,
) -> dict[str, ArtifactRecord | None]:
    """Read the inputs from ``store``, call the component, store and return its outputs."""
    sig = component.signature()
    kwargs = typed_parameters(component, params)
    for name, digest in inputs.items():
        kwargs[name] = None if digest is None else store.get(digest, sig.parameters[name])
    result = component.fn(**kwargs)
    return store_outputs(component, result, lambda name, value, tp: store.put(value, tp))


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def captured_log() -> Iterator[io.StringIO]:
    """Collect ``logging`` records (INFO and up) and ``print`` output while a step runs.

    Printed text goes to stderr (stdout stays for a command's results) and the buffer
    keeps a copy for the run store.
    """
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        with contextlib.redirect_stdout(_Tee(sys.stderr, buffer)):
            yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def log_text(buffer: io.StringIO, extra: str = "") -> str | None:
    """The captured log (its last :data:`MAX_LOG_CHARS`), plus ``extra``; None if empty."""
    text = buffer.getvalue() + extra
    return text[-MAX_LOG_CHARS:] or None


def call_with_timeout(fn: Callable[[], T], timeout_s: float | None, step: str) -> T:
    """``fn()``, failing with :class:`StepTimeout` after ``timeout_s`` seconds.

    In the main thread an interval timer interrupts the step where it is (between
    Python bytecodes). Elsewhere the step runs in a daemon thread that is abandoned
    at the deadline: it cannot be killed, so it may finish in the background.
    """
    if timeout_s is None:
        return fn()
    message = f"step {step!r} ran past its timeout of {timeout_s:g} s"
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def alarm(signum: int, frame: Any) -> None:
            raise StepTimeout(message)

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:
            box["error"] = err

    worker = threading.Thread(target=target, name=f"recops-step-{step}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise StepTimeout(message)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def attempts(
    component: Component,
    once: Callable[[int], T],
    on_failure: Callable[[int, BaseException], None] | None = None,
) -> tuple[T, int]:
    """Call ``once(attempt)`` until it succeeds or the component's retries are spent.

    Returns ``(result, attempts used)``; raises :class:`StepError` (from the last
    error) when an error is not in ``retry_on`` or no retry is left.
    """
    options = component.options
    attempt = 0
    while True:
        attempt += 1
        try:
            return once(attempt), attempt
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:
            if on_failure is not None:
                on_failure(attempt, err)
            if attempt > options.retries or not isinstance(err, options.retry_on):
                raise StepError(component.name, attempt, err) from err
            time.sleep(options.retry_delay_s * 2 ** (attempt - 1))


def failure_log(attempt: int, error: BaseException) -> str:
    """The traceback of a failed attempt, for the step's log."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return f"--- attempt {attempt} failed ---\n" + "".join(lines)
