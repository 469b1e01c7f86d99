"""Executors: trace a pipeline, skip what is cached, run the rest, record everything.

Every executor does the same bookkeeping (:class:`Executor`); they differ only in
*where* a step's body runs: :class:`LocalExecutor` in this process, one step after
the other; :class:`~recops.pipelines.ray_executor.RayExecutor` as Ray tasks.

**Caching.** Before a step runs, its cache key is computed::

    sha256(canonical JSON of {component: module:qualname, code: code hash,
                              params: JSON parameters (defaults included),
                              inputs: {name: input artifact digest or null},
                              fingerprint: the component's fingerprint(params) or null,
                              outputs: {name: annotated type}})

(the code hash is :func:`recops.pipelines.code.code_hash`). When the run store holds
that key and every output artifact it names is still in the artifact store, the
step is *cached*: it does not run and its outputs are those artifacts. Inputs
enter by digest, so a step re-run upstream that writes the same content (same
digest) still lets everything downstream hit the cache. ``cache=False`` on the
executor ignores the cache for that run (results are still remembered);
``cache=False`` on a component never caches it.

**Failures and resume.** A step is retried per its options; if it still fails the
run stops, later steps are marked ``skipped``, and :class:`PipelineError` is raised
with the run id. :meth:`Executor.resume` re-traces the run's pipeline with its
recorded parameters, keeps every step that had succeeded (their outputs as
recorded, whatever the cache says), and runs the failed step and those after it.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from recops.pipelines.artifacts import ArtifactRecord, ArtifactRef
from recops.pipelines.code import code_version
from recops.pipelines.codecs import dumps, type_name, unwrap_optional
from recops.pipelines.execution import (
    StepError,
    attempts,
    call_with_timeout,
    captured_log,
    describe,
    failure_log,
    log_text,
    run_step,
    typed_parameters,
)
from recops.pipelines.graph import Graph, Pipeline, Step, StepOutput, load_object
from recops.pipelines.progress import Reporter, Silent
from recops.pipelines.runstore import RunRecord, RunStore, StepRecord
from recops.pipelines.settings import default_artifact_store, default_run_store
from recops.pipelines.store import ArtifactNotFoundError, ArtifactStore


class PipelineError(RuntimeError):
    """A run failed; ``run_id`` is what :meth:`Executor.resume` takes."""

    def __init__(self, run_id: str, step: str | None, message: str) -> None:
        self.run_id = run_id
        self.step = step
        super().__init__(f"run {run_id} failed: {message}")


@dataclass(frozen=True)
class Plan:
    """A step ready to be looked up or run: its input digests, fingerprint and cache key."""

    step: Step
    inputs: dict[str, str | None]
    fingerprint: str | None
    code_hash: str
    cache_key: str


@dataclass(frozen=True)
class RunResult:
    """A finished run: its record, its traced graph, and the store holding its artifacts."""

    record: RunRecord
    graph: Graph
    store: ArtifactStore

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.record.run_id

    @property
    def status(self) -> str:
        """``succeeded`` (a failed run raises :class:`PipelineError` instead)."""
        return self.record.status

    def value(self, step: str, output: str = "output") -> Any:
        """The value of ``step``'s ``output``, read from the artifact store."""
        digest = self.record.step(step).outputs[output]
        tp = self.graph.step(step).component.signature().outputs[output]
        return None if digest is None else self.store.get(digest, tp)


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-xxxxxx``: sorts by time, unique."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def cache_key(plan_step: Step, code: str, inputs: dict[str, Any], fingerprint: str | None) -> str:
    """The cache key of a step (see the module docstring)."""
    outputs = plan_step.component.signature().outputs
    document = {
        "component": plan_step.component.ref,
        "code": code,
        "params": plan_step.params,
        "inputs": inputs,
        "fingerprint": fingerprint,
        "outputs": {name: type_name(tp) for name, tp in outputs.items()},
    }
    return hashlib.sha256(dumps(document)).hexdigest()


class Executor(ABC):
    """Shared bookkeeping of executors (see the module docstring).

    Parameters
    ----------
    store:
        The artifact store, or its URL; default ``<home>/pipelines/artifacts``.
    runs:
        The run store, or its path; default ``<home>/pipelines/runs.sqlite3``.
    cache:
        Use cached step results (False re-runs every step of the run).
    reporter:
        Progress display; default silent (the CLI passes a :class:`Reporter`).
    """

    name: ClassVar[str]

    def __init__(
        self,
        store: ArtifactStore | str | None = None,
        runs: RunStore | str | None = None,
        *,
        cache: bool = True,
        reporter: Reporter | None = None,
    ) -> None:
        self.store = store if isinstance(store, ArtifactStore) else ArtifactStore(
            store or default_artifact_store()
        )  # fmt: skip
        self.runs = runs if isinstance(runs, RunStore) else RunStore(runs or default_run_store())
        self.cache = cache
        self.reporter = reporter or Silent()

    # ----------------------------------------------------------------- public
    def run(self, pipeline: Pipeline, /, **params: Any) -> RunResult:
        """Trace ``pipeline`` with ``params`` and run it; PipelineError if a step fails."""
        graph = pipeline.trace(params, history=self.runs)
        run_id = new_run_id()
        self.runs.start_run(
            run_id,
            graph.pipeline,
            graph.ref,
            self.name,
            graph.params,
            code_version(),
            self.store.url,
            self._step_rows(graph),
        )
        return self._drive(run_id, graph, {}, resumed=False)

    def resume(self, run_id: str) -> RunResult:
        """Run a failed run again from its failed step (see the module docstring)."""
        record = self.runs.get_run(run_id)
        if record.status == "succeeded":
            raise ValueError(f"run {record.run_id} succeeded: there is nothing to resume")
        pipeline = load_object(record.ref)
        if not isinstance(pipeline, Pipeline):
            raise ValueError(f"{record.ref} is not a @pipeline (run {record.run_id})")
        graph = pipeline.trace(record.params, history=self.runs, before=record.started)
        done = {s.name: s for s in record.steps if s.status in ("succeeded", "cached")}
        self.runs.restart_run(record.run_id, self.name, self._step_rows(graph))
        return self._drive(record.run_id, graph, done, resumed=True)

    # ----------------------------------------------------------------- shared
    @staticmethod
    def _step_rows(graph: Graph) -> list[tuple[str, str, str, dict[str, Any]]]:
        return [(s.name, s.component.ref, s.component.code_hash(), s.params) for s in graph.steps]

    def _drive(
        self, run_id: str, graph: Graph, done: dict[str, StepRecord], resumed: bool
    ) -> RunResult:
        outputs: dict[str, dict[str, str | None]] = {n: dict(s.outputs) for n, s in done.items()}
        try:
            with self.reporter:
                self.reporter.start(graph.pipeline, run_id, len(graph.steps), resumed)
                for name in graph.names():
                    if name in done:
                        self.reporter.step_done(name, "reused", None, "from the failed run")
                self._execute(run_id, graph, done, outputs)
        except StepError as err:
            self.runs.skip_pending(run_id)
            self.runs.finish_run(run_id, "failed", error=str(err))
            raise PipelineError(run_id, err.step, str(err)) from err.error
        except BaseException as err:
            self.runs.skip_pending(run_id)
            self.runs.finish_run(run_id, "failed", error=describe(err))
            raise
        result = {n: outputs[o.step][o.name] for n, o in graph.outputs.items()}
        self.runs.finish_run(run_id, "succeeded", result)
        return RunResult(self.runs.get_run(run_id), graph, self.store)

    def plan(self, step: Step, outputs: dict[str, dict[str, str | None]]) -> Plan:
        """Input digests, fingerprint and cache key of ``step`` once its inputs exist."""
        sig = step.component.signature()
        inputs: dict[str, str | None] = {}
        for name, source in step.inputs.items():
            digest: str | None
            if isinstance(source, StepOutput):
                digest = outputs[source.step][source.name]
            else:
                assert isinstance(source, ArtifactRef)
                if not self.store.exists(source.digest):
                    raise ArtifactNotFoundError(
                        f"input {name!r} ({source.origin or source.digest}) is not in "
                        f"{self.store.url}"
                    )
                digest = source.digest
            if digest is None and not unwrap_optional(sig.parameters[name])[1]:
                raise TypeError(
                    f"input {name!r} is None (step {source!r} produced nothing) but is not "
                    "annotated as optional"
                )
            inputs[name] = digest
        fingerprint = None
        if step.component.fingerprint is not None:
            params = typed_parameters(step.component, step.params)
            fingerprint = step.component.fingerprint(**params)
        code = step.component.code_hash()
        return Plan(step, inputs, fingerprint, code, cache_key(step, code, inputs, fingerprint))

    def _prepare(
        self, run_id: str, step: Step, outputs: dict[str, dict[str, str | None]]
    ) -> tuple[Plan, dict[str, str | None] | None]:
        """Plan the step, record its start, and return its cached outputs if any."""
        try:
            plan = self.plan(step, outputs)
        except Exception as err:
            error = describe(err)
            self.runs.step_finished(run_id, step.name, "failed", {}, attempts=0, error=error)
            self.reporter.step_done(step.name, "failed", None, describe(err))
            raise StepError(step.name, 0, err) from err
        self.runs.step_started(run_id, step.name, plan.inputs, plan.cache_key, plan.fingerprint)
        if not (self.cache and step.component.options.cache):
            return plan, None
        hit = self.runs.cached(plan.cache_key)
        if hit is None:
            return plan, None
        from_run, cached = hit
        if not all(d is None or self.store.exists(d) for d in cached.values()):
            return plan, None
        records = {n: None if d is None else self._artifact(d) for n, d in cached.items()}
        self.runs.step_finished(
            run_id, step.name, "cached", records, attempts=0, cached_from=from_run
        )
        self.reporter.step_done(step.name, "cached", None, f"from run {from_run}")
        return plan, cached

    def _artifact(self, digest: str) -> ArtifactRecord:
        return self.runs.artifact(digest) or self.store.record(digest)

    def _succeeded(
        self,
        run_id: str,
        plan: Plan,
        records: dict[str, ArtifactRecord | None],
        n_attempts: int,
        log: str | None,
        seconds: float,
    ) -> dict[str, str | None]:
        step = plan.step
        self.runs.step_finished(
            run_id, step.name, "succeeded", records, attempts=n_attempts, log=log
        )
        digests = {n: None if r is None else r.digest for n, r in records.items()}
        if step.component.options.cache:
            self.runs.remember(plan.cache_key, run_id, step.name, digests)
        retried = f"after {n_attempts} attempts" if n_attempts > 1 else ""
        self.reporter.step_done(step.name, "succeeded", seconds, retried)
        return digests

    def _failed(self, run_id: str, step: Step, err: StepError, log: str | None) -> None:
        error = describe(err.error)
        self.runs.step_finished(
            run_id, step.name, "failed", {}, attempts=err.attempts, error=error, log=log
        )
        self.reporter.step_done(step.name, "failed", None, describe(err.error))

    @abstractmethod
    def _execute(
        self,
        run_id: str,
        graph: Graph,
        done: dict[str, StepRecord],
        outputs: dict[str, dict[str, str | None]],
    ) -> None:
        """Run every step not in ``done``, filling ``outputs``; StepError on a failure."""


class LocalExecutor(Executor):
    """Runs the steps in this process, in the traced order.

    Timeouts interrupt a step in the main thread (see
    :func:`~recops.pipelines.execution.call_with_timeout`); logs and printed output
    of each step are kept in the run store.
    """

    name = "local"

    def _execute(
        self,
        run_id: str,
        graph: Graph,
        done: dict[str, StepRecord],
        outputs: dict[str, dict[str, str | None]],
    ) -> None:
        for step in graph.steps:
            if step.name in done:
                continue
            plan, cached = self._prepare(run_id, step, outputs)
            if cached is not None:
                outputs[step.name] = cached
                continue
            outputs[step.name] = self._run_here(run_id, plan)

    def _run_here(self, run_id: str, plan: Plan) -> dict[str, str | None]:
        step = plan.step
        component = step.component
        self.reporter.step_started(step.name)
        started = time.perf_counter()
        with captured_log() as buffer:

            def once(attempt: int) -> dict[str, ArtifactRecord | None]:
                return call_with_timeout(
                    lambda: run_step(component, step.params, plan.inputs, self.store),
                    component.options.timeout_s,
                    step.name,
                )

            def on_failure(attempt: int, error: BaseException) -> None:
                buffer.write(failure_log(attempt, error))

            try:
                records, n_attempts = attempts(component, once, on_failure)
            except StepError as err:
                self._failed(run_id, step, err, log_text(buffer))
                raise
        return self._succeeded(
            run_id, plan, records, n_attempts, log_text(buffer), time.perf_counter() - started
        )
