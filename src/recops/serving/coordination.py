"""Multi-worker duties of one worker: apply the others' admin operations, report, share metrics.

With ``recops serve --workers N`` each worker is its own process (see
:mod:`recops.serving.workers` for the shared run folder). An admin request reaches
one worker; it applies the operation, publishes it, and waits for the others
(:func:`propagate`; a switch in two phases, :func:`switch_everywhere`), which pick
it up in :func:`sync_forever`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from fastapi.concurrency import run_in_threadpool

from recops.serving.context import ServerContext
from recops.serving.loaded_model import LoadedModel, ModelLoadError
from recops.serving.repository import InvalidNameError, ModelNotFoundError
from recops.serving.schemas import WorkerInfo, WorkerPhase
from recops.serving.workers import Heartbeat, Operation, WorkerGroup

log = logging.getLogger("recops.serving")

#: How often a worker looks for other workers' admin operations and reports itself.
SYNC_S = 0.2
#: A switch takes effect on every worker this long after it is published.
FLIP_LEAD_S = 3 * SYNC_S
#: How often a worker publishes its metrics for the others' ``/metrics``.
METRICS_S = 0.5
#: How often a worker's event loop beats (see :class:`recops.serving.workers.Heartbeat`).
HEARTBEAT_S = 0.5


async def apply(ctx: ServerContext, op: Operation) -> None:
    """Carry out an admin operation another worker published."""
    manager = ctx.manager
    try:
        if op.op == "switch":
            # Loaded in the switch's first phase: this only schedules the flip (a
            # worker that missed the first phase, e.g. restarted, loads it here).
            at = time.time() if op.at is None else op.at
            bundle = await run_in_threadpool(manager.switch_at, op.name, op.version, at)
            await _flip(ctx, bundle.name, bundle.version, at)
        elif op.op == "load":
            await run_in_threadpool(manager.load, op.name, op.version)
        else:
            manager.unload(op.name, op.version)
        ctx.last_error = None
    except (ModelNotFoundError, ModelLoadError, InvalidNameError, ValueError) as exc:
        ctx.last_error = f"{op.op} {op.name}/{op.version}: {exc}"
        log.error("worker %d could not apply %s", os.getpid(), ctx.last_error)


async def apply_pending(ctx: ServerContext, group: WorkerGroup) -> None:
    """Apply, in order, the operations this worker has not applied yet."""
    for op in group.pending():
        await apply(ctx, op)
        group.report(op.id, ctx.serving_label(), ctx.last_error)


async def sync_forever(ctx: ServerContext, group: WorkerGroup) -> None:
    """A worker's background duty: other workers' admin operations, its report, metrics.

    Also catches the online state up with the log, so that an idle worker does not
    face a long catch-up on its next request.
    """
    published = 0.0
    while True:
        try:
            await apply_pending(ctx, group)
            group.report(group.applied, ctx.serving_label(), ctx.last_error)
            ctx.follower.poll()
            if time.monotonic() - published >= METRICS_S:
                group.write_metrics(ctx.metrics.snapshot(worker_name(ctx)))
                published = time.monotonic()
        except Exception:  # keep syncing: one failed round must not stop the worker's duties
            log.exception("worker %d: sync with the other workers failed", os.getpid())
        await asyncio.sleep(SYNC_S)


def worker_name(ctx: ServerContext) -> str:
    """The ``worker`` label of this process: its index in the group (else its pid)."""
    index = ctx.settings.worker_index
    return str(os.getpid() if index is None else index)


async def heartbeat_forever(heartbeat: Heartbeat) -> None:
    """Beat every :data:`HEARTBEAT_S` from the event loop: a blocked loop stops beating."""
    while True:
        try:
            heartbeat.beat()
        except OSError:  # the run folder is gone: the supervisor is shutting down
            log.warning("worker %d: could not beat in %s", os.getpid(), heartbeat.path)
        await asyncio.sleep(HEARTBEAT_S)


async def _flip(ctx: ServerContext, name: str, version: str, at: float) -> None:
    """Wait for a scheduled switch's moment; the manager serves the new version from it."""
    delay = at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    ctx.manager.current()  # flips now if no request did at the moment itself
    ctx.metrics.set_serving(name, version)


async def _wait(group: WorkerGroup, op_id: int, deadline: float) -> None:
    while group.behind(op_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def propagate(
    ctx: ServerContext, op: str, name: str, version: str
) -> list[WorkerInfo] | None:
    """Publish an admin operation done here and wait until every live worker applied it."""
    group = ctx.group
    if group is None:
        return None
    op_id = group.publish(op, name, version, ctx.serving_label())
    await _wait(group, op_id, time.monotonic() + ctx.settings.admin_wait_s)
    return worker_infos(group, op_id)


async def switch_everywhere(
    ctx: ServerContext, name: str, version: str
) -> tuple[LoadedModel, list[WorkerInfo] | None]:
    """Serve ``name``/``version`` on every worker at the same moment (two phases).

    1. **Load** it here, then on every live worker (published as a ``load``), and
       wait until each has it in memory. If one could not load it, nothing is
       switched (ModelLoadError naming the workers and why): every worker keeps
       serving the same old version.
    2. **Flip** together: a ``switch`` published with a moment :data:`FLIP_LEAD_S`
       ahead, which every worker sees before it comes (they poll each
       :data:`SYNC_S`); from that moment each worker's requests get the new
       version (:meth:`~recops.serving.repository.ModelManager.switch_at`), so
       replies of one server do not mix versions while versions load.

    Workers that did not follow within ``admin_wait_s`` are reported (``lagging``,
    or ``stale`` when not heard of), never left out.
    """
    manager, group = ctx.manager, ctx.group
    if group is None:
        bundle = await run_in_threadpool(manager.switch, name, version)
        ctx.metrics.set_serving(bundle.name, bundle.version)
        return bundle, None
    deadline = time.monotonic() + ctx.settings.admin_wait_s
    await run_in_threadpool(manager.load, name, version)
    load_id = group.publish("load", name, version, ctx.serving_label())
    await _wait(group, load_id, deadline)
    failed = [w for w in group.workers() if w.applied >= load_id and w.error]
    if failed:
        reasons = "; ".join(f"worker {w.pid}: {w.error}" for w in failed)
        raise ModelLoadError(f"not switched, the version did not load everywhere: {reasons}")
    at = time.time() + FLIP_LEAD_S
    switch_id = group.publish("switch", name, version, ctx.serving_label(), at=at)
    bundle = await run_in_threadpool(manager.switch_at, name, version, at)
    await _flip(ctx, name, version, at)
    group.report(switch_id, ctx.serving_label(), None)
    await _wait(group, switch_id, deadline)
    return bundle, worker_infos(group, switch_id)


def worker_infos(group: WorkerGroup, op_id: int) -> list[WorkerInfo]:
    """Every worker's state relative to operation ``op_id``, stale ones included."""
    now = time.time()
    infos = []
    for w in group.workers(live_only=False):
        state: WorkerPhase = (
            "stale" if w.stale(now) else "up_to_date" if w.applied >= op_id else "lagging"
        )
        infos.append(
            WorkerInfo(
                pid=w.pid,
                serving=w.serving,
                up_to_date=w.applied >= op_id,
                state=state,
                last_seen_s=round(max(0.0, now - w.seen), 3),
                error=w.error,
            )
        )
    return infos
