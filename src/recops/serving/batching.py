"""Dynamic batching: concurrent requests share one model call, with a bounded wait.

A request's item joins a queue; one worker takes the first waiting item, waits at
most ``max_delay_s`` for more (fewer if ``max_batch_size`` fill first), calls the
batched function once and hands every caller its own result. Items that arrive
while a batch is being computed form the next batch, so under load batches grow by
themselves even with ``max_delay_s = 0``.

Whether this wins depends on the machine: it pays off when the per-call overhead of
the model dominates and cores are free; the benchmark measures it (``batching`` in
:class:`~recops.serving.settings.ServerSettings` switches it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchObserver = Callable[[int, Sequence[float]], None]


class DynamicBatcher(Generic[T, R]):
    """Collects single items into batches for ``fn`` inside the running event loop.

    Parameters
    ----------
    fn:
        Batched function: a list of items in, one result per item out, same order.
    max_batch_size:
        Largest batch handed to ``fn``.
    max_delay_s:
        Longest time the first item of a batch waits for others to join.
    observer:
        Called after each batch with its size and every item's queue time in
        seconds (for metrics).
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 32,
        max_delay_s: float = 0.001,
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
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R], float]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result (or the exception of its batch)."""
        if self._queue is None or self._worker is None or self._worker.done():
            self._start()
        assert self._queue is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future, time.perf_counter()))
        return await future

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.get_running_loop().create_task(self._run(self._queue))

    async def close(self) -> None:
        """Stop the worker; items still queued get a RuntimeError."""
        worker, queue = self._worker, self._queue
        self._worker = None
        self._queue = None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while queue is not None and not queue.empty():
            _, future, _ = queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the batcher was closed"))

    async def _run(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R], float]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_delay_s
            while len(batch) < self.max_batch_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            self._run_batch(batch)

    def _run_batch(self, batch: list[tuple[T, asyncio.Future[R], float]]) -> None:
        started = time.perf_counter()
        live = [entry for entry in batch if not entry[1].done()]  # skip cancelled callers
        if not live:
            return
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
            if not future.done():
                future.set_result(result)
        if self.observer is not None:
            self.observer(len(live), [started - queued for _, _, queued in live])
