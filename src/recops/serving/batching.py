"""Dynamic batching: the requests that arrive together are computed together.

A request's item joins the pending batch and its handler waits on a future. The
first item of a batch schedules the batch's computation for the end of the current
event-loop turn (``loop.call_soon``), or ``max_delay_s`` later when a wait is
configured; ``max_batch_size`` items run it at once. Under load the loop reads
several connections' requests in one turn, their handlers all reach the batcher
before the batch runs, and the batch forms without anyone waiting. A lone request
would pay two extra event-loop hops (a future and its wake-up: about 30 µs, 7% of
the route at concurrency 1 on the serving benchmark), so after
:data:`INLINE_AFTER` batches of one in a row the batcher computes a request at once,
in its own handler, and still sends one request in :data:`PROBE_EVERY` through the
loop to see whether others arrive with it: a batch of two or more turns batching
back on.

Why it pays on one core: served one after another, each request's stages (user
tower, index, re-rank) find the CPU caches full of the previous request's framework
work and cost two to three times what they cost in a loop; computed stage by stage
for the whole batch, only the first request of each stage pays for the cold cache,
and the index scans its cells for every query in one pass. ``benchmarks/serving.py``
measures the route with and without it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchObserver = Callable[[int, Sequence[float]], None]

#: Batches of one in a row after which requests are computed at once (no hop).
INLINE_AFTER = 4

#: While computing at once, one request in this many still goes through the loop.
PROBE_EVERY = 16

#: One batch's computation: the items in, one result or exception per item out, in
#: order. An exception *returned* fails that item alone; one *raised* fails them all.
BatchFunction = Callable[[list[T]], Sequence[R | Exception]]


class DynamicBatcher(Generic[T, R]):
    """Collects the items submitted in one event-loop turn into one call of ``fn``.

    Parameters
    ----------
    fn:
        Batched function: a list of items in, one result (or an exception for that
        item alone) per item out, same order.
    max_batch_size:
        Largest batch handed to ``fn``; a full batch runs at once.
    max_delay_s:
        How long the first item of a batch waits for others. 0: until the end of
        the current event-loop turn (what is already queued joins, nothing waits).
    observer:
        Called after each batch with its size and every item's wait in seconds (for
        metrics).
    """

    def __init__(
        self,
        fn: BatchFunction[T, R],
        *,
        max_batch_size: int = 32,
        max_delay_s: float = 0.0,
        observer: BatchObserver | None = None,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int):
            raise ValueError(f"`max_batch_size` must be a positive int (got {max_batch_size!r})")
        if max_batch_size < 1:
            raise ValueError(f"`max_batch_size` must be a positive int (got {max_batch_size!r})")
        if not 0.0 <= max_delay_s <= 1.0:
            raise ValueError(f"`max_delay_s` must be in 0..1 seconds (got {max_delay_s!r})")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.observer = observer
        self._pending: list[tuple[T, asyncio.Future[R], float]] = []
        self._scheduled: asyncio.Handle | None = None
        self._closed = False
        self._lone = 0  # batches of one in a row
        self._inline = 0  # requests computed at once since the last probe

    async def submit(self, item: T) -> R:
        """Add ``item`` to the pending batch and wait for its result (or exception)."""
        if self._closed:
            raise RuntimeError("the batcher was closed")
        if self._lone >= INLINE_AFTER and not self._pending:
            self._inline += 1
            if self._inline < PROBE_EVERY:
                return self._run_inline(item)
            self._inline = 0
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            if self.max_delay_s > 0:
                self._scheduled = loop.call_later(self.max_delay_s, self._run)
            else:
                self._scheduled = loop.call_soon(self._run)
        self._pending.append((item, future, time.perf_counter()))
        if len(self._pending) >= self.max_batch_size:
            self._run()
        return await future

    async def close(self) -> None:
        """Refuse new items; items still pending get a RuntimeError."""
        self._closed = True
        batch = self._take()
        for _, future, _ in batch:
            if not future.done():
                future.set_exception(RuntimeError("the batcher was closed"))

    def _take(self) -> list[tuple[T, asyncio.Future[R], float]]:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        batch, self._pending = self._pending, []
        return batch

    def _run_inline(self, item: T) -> R:
        (result,) = self.fn([item])
        if self.observer is not None:
            self.observer(1, [0.0])
        if isinstance(result, Exception):
            raise result
        return result

    def _run(self) -> None:
        started = time.perf_counter()
        live = [entry for entry in self._take() if not entry[1].done()]  # skip cancelled
        if not live:
            return
        self._lone = self._lone + 1 if len(live) == 1 else 0
        try:
            results = self.fn([item for item, _, _ in live])
            if len(results) != len(live):
                raise RuntimeError(
                    f"batched function returned {len(results)} results for {len(live)} items"
                )
        except Exception as exc:
            for _, future, _ in live:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future, _), result in zip(live, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self.observer is not None:
            self.observer(len(live), [started - queued for _, _, queued in live])
