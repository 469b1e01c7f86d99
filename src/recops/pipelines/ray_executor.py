"""The Ray executor: every step that is not cached runs as a Ray task.

The driver (this process) traces the pipeline, computes cache keys, records the run
and decides what runs; a task receives only strings and JSON — the component's
``module:qualname``, its parameters, its input digests and the artifact store's
URL — imports the component, and runs the same body as the local executor
(:func:`~recops.pipelines.execution.run_step`), reading inputs from and writing
outputs to the store. So the same pipeline produces the same artifacts (same
digests) locally and on Ray, and steps whose inputs are ready run in parallel.

The store must be reachable from every worker: a local folder on a one-machine
cluster, ``s3://`` or ``gs://`` on a real one (``memory://`` lives in one process and
is refused). Components must be importable by the workers (defined at module
level). Retries are the component's own (as locally); a timeout cancels the task
(``ray.cancel(force=True)`` kills its worker).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from recops.optional import import_ray
from recops.pipelines.artifacts import ArtifactRecord
from recops.pipelines.component import Component
from recops.pipelines.execution import (
    MAX_LOG_CHARS,
    StepError,
    StepTimeout,
    captured_log,
    failure_log,
    run_step,
)
from recops.pipelines.executor import Executor, Plan
from recops.pipelines.graph import Graph, load_object
from recops.pipelines.progress import Reporter
from recops.pipelines.runstore import RunStore, StepRecord
from recops.pipelines.store import ArtifactStore


def _ray() -> Any:
    return import_ray(needed_by="the Ray executor")


def ray_step(
    ref: str,
    params: dict[str, Any],
    inputs: dict[str, str | None],
    store_url: str,
    import_path: list[str],
) -> tuple[dict[str, dict[str, Any] | None], str]:
    """The body of a step's Ray task: returns its output records (as dicts) and its log.

    ``import_path``: the driver's ``sys.path`` folders, added to the worker's so that it
    imports components the way the driver does (on one machine; a cluster's workers
    need the code in their image or Ray's ``runtime_env``).
    """
    for folder in reversed(import_path):
        if folder not in sys.path and os.path.isdir(folder):
            sys.path.insert(0, folder)
    component = load_object(ref)
    if not isinstance(component, Component):
        raise TypeError(f"{ref} is not a @component")
    store = ArtifactStore(store_url)
    try:
        with captured_log() as buffer:
            records = run_step(component, params, inputs, store)
    finally:
        store.close()
    return {n: None if r is None else r.to_dict() for n, r in records.items()}, buffer.getvalue()


class RayExecutor(Executor):
    """Runs each step as a Ray task (see the module docstring).

    Parameters
    ----------
    store, runs, cache, reporter:
        As for :class:`~recops.pipelines.executor.Executor`.
    address:
        A Ray cluster to join (``"auto"``, ``"ray://host:10001"``); None starts a
        local instance when Ray is not initialised yet.
    num_cpus:
        CPUs of a local instance started here.
    """

    name = "ray"

    def __init__(
        self,
        store: ArtifactStore | str | None = None,
        runs: RunStore | str | None = None,
        *,
        cache: bool = True,
        reporter: Reporter | None = None,
        address: str | None = None,
        num_cpus: int | None = None,
    ) -> None:
        super().__init__(store, runs, cache=cache, reporter=reporter)
        if self.store.url.startswith("memory://"):
            raise ValueError(
                "the Ray executor needs an artifact store its workers can reach: a folder "
                "or an s3:// / gs:// URL, not memory://"
            )
        ray = _ray()
        if not ray.is_initialized():
            ray.init(
                address=address,
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self._task = ray.remote(ray_step)
        self._path = [p for p in sys.path if p and os.path.isdir(p)]

    def _execute(
        self,
        run_id: str,
        graph: Graph,
        done: dict[str, StepRecord],
        outputs: dict[str, dict[str, str | None]],
    ) -> None:
        ray = _ray()
        pending = [s for s in graph.steps if s.name not in done]
        running: dict[Any, _Task] = {}
        failure: StepError | None = None
        while True:
            # A cached step makes its dependents ready at once: scan until nothing changes.
            ready_steps = failure is None
            while ready_steps:
                ready_steps = False
                for step in [s for s in pending if all(u in outputs for u in s.upstream())]:
                    pending.remove(step)
                    plan, cached = self._prepare(run_id, step, outputs)
                    if cached is not None:
                        outputs[step.name] = cached
                        ready_steps = True
                        continue
                    self.reporter.step_started(step.name)
                    task = _Task(plan, started=time.perf_counter())
                    running[self._submit(task)] = task
            if not running:
                if pending and failure is None:
                    names = ", ".join(s.name for s in pending)
                    raise RuntimeError(f"steps {names} wait for outputs no step produces")
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            for ref in ready:
                task = running.pop(ref)
                try:
                    records, text = ray.get(ref)
                except Exception as err:  # the task's own error, re-raised by ray.get
                    if self._should_retry(task, err):
                        running[self._submit(task)] = task
                    elif failure is None:
                        failure = self._give_up(run_id, task)
                    continue
                task.log.append(text)
                outputs[task.plan.step.name] = self._succeeded(
                    run_id,
                    task.plan,
                    {
                        n: None if r is None else ArtifactRecord.from_dict(r)
                        for n, r in records.items()
                    },
                    task.attempt,
                    task.log_text(),
                    time.perf_counter() - task.started,
                )
            now = time.monotonic()
            for ref, task in running.items():
                if task.deadline is not None and now > task.deadline and not task.cancelled:
                    task.cancelled = True
                    ray.cancel(ref, force=True)
        if failure is not None:
            raise failure

    def _submit(self, task: _Task) -> Any:
        component = task.plan.step.component
        task.attempt += 1
        task.cancelled = False
        timeout = component.options.timeout_s
        task.deadline = None if timeout is None else time.monotonic() + timeout
        remote = self._task.options(num_cpus=component.options.cpus, max_retries=0)
        return remote.remote(
            component.ref, task.plan.step.params, task.plan.inputs, self.store.url, self._path
        )

    def _should_retry(self, task: _Task, err: Exception) -> bool:
        """Record the failed attempt; True (after the back-off) when it is to be retried."""
        ray = _ray()
        options = task.plan.step.component.options
        error: BaseException = err
        if task.cancelled:
            error = StepTimeout(
                f"step {task.plan.step.name!r} ran past its timeout of {options.timeout_s:g} s"
            )
        elif isinstance(err, ray.exceptions.RayTaskError) and isinstance(err.cause, BaseException):
            error = err.cause  # the component's own exception, without Ray's wrapping
        task.error = error
        task.log.append(failure_log(task.attempt, error))
        if task.attempt > options.retries or not isinstance(error, options.retry_on):
            return False
        time.sleep(options.retry_delay_s * 2 ** (task.attempt - 1))
        return True

    def _give_up(self, run_id: str, task: _Task) -> StepError:
        assert task.error is not None
        failure = StepError(task.plan.step.name, task.attempt, task.error)
        self._failed(run_id, task.plan.step, failure, task.log_text())
        return failure


@dataclass
class _Task:
    """A step in flight on Ray, across its attempts."""

    plan: Plan
    started: float
    attempt: int = 0
    deadline: float | None = None
    cancelled: bool = False
    error: BaseException | None = None
    log: list[str] = field(default_factory=list)

    def log_text(self) -> str | None:
        return "".join(self.log)[-MAX_LOG_CHARS:] or None
