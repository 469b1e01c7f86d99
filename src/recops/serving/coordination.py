"""Multi-worker duties of one worker: apply the others' admin operations, report, share metrics.

With ``recops serve --workers N`` each worker is its own process (see
:mod:`recops.serving.workers` for the shared run folder). An admin request reaches
one worker; it applies the operation, publishes it, and waits for the others
(:func:`propagate`), which pick it up in :func:`sync_forever`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from fastapi.concurrency import run_in_threadpool

from recops.serving.context import ServerContext
from recops.serving.repository import InvalidNameError, ModelLoadError, ModelNotFoundError
from recops.serving.schemas import WorkerInfo
from recops.serving.workers import Heartbeat, Operation, WorkerGroup

log = logging.getLogger("recops.serving")

#: How often a worker looks for other workers' admin operations and reports itself.
SYNC_S = 0.2
#: How often a worker publishes its metrics for the others' ``/metrics``.
METRICS_S = 0.5
#: How often a worker's event loop beats (see :class:`recops.serving.workers.Heartbeat`).
HEARTBEAT_S = 0.5


async def apply(ctx: ServerContext, op: Operation) -> None:
    """Carry out an admin operation another worker published."""
    manager = ctx.manager
    try:
        if op.op == "switch":
            bundle = await run_in_threadpool(manager.switch, op.name, op.version)
            ctx.metrics.set_serving(bundle.name, bundle.version)
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
                group.write_metrics(ctx.metrics.samples())
                published = time.monotonic()
        except Exception:  # keep syncing: one failed round must not stop the worker's duties
            log.exception("worker %d: sync with the other workers failed", os.getpid())
        await asyncio.sleep(SYNC_S)


async def heartbeat_forever(heartbeat: Heartbeat) -> None:
    """Beat every :data:`HEARTBEAT_S` from the event loop: a blocked loop stops beating."""
    while True:
        try:
            heartbeat.beat()
        except OSError:  # the run folder is gone: the supervisor is shutting down
            log.warning("worker %d: could not beat in %s", os.getpid(), heartbeat.path)
        await asyncio.sleep(HEARTBEAT_S)


async def propagate(
    ctx: ServerContext, op: str, name: str, version: str
) -> list[WorkerInfo] | None:
    """Publish an admin operation done here and wait until every live worker applied it."""
    group = ctx.group
    if group is None:
        return None
    op_id = group.publish(op, name, version, ctx.serving_label())
    deadline = time.monotonic() + ctx.settings.admin_wait_s
    while group.behind(op_id) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return worker_infos(group, op_id)


def worker_infos(group: WorkerGroup, op_id: int) -> list[WorkerInfo]:
    """Each live worker's state, relative to operation ``op_id``."""
    return [
        WorkerInfo(pid=w.pid, serving=w.serving, up_to_date=w.applied >= op_id, error=w.error)
        for w in group.workers()
    ]
