"""Dynamic batching: batches form under concurrency, delay is bounded, errors propagate."""

from __future__ import annotations

import asyncio
import time

import pytest

from recops.serving.batching import DynamicBatcher


def test_concurrent_items_share_a_batch() -> None:
    sizes: list[int] = []
    queue_times: list[float] = []

    def double(items: list[int]) -> list[int]:
        return [2 * i for i in items]

    def observe(size: int, waits) -> None:
        sizes.append(size)
        queue_times.extend(waits)

    async def main() -> list[int]:
        batcher = DynamicBatcher(double, max_batch_size=8, max_delay_s=0.05, observer=observe)
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(20)))
        finally:
            await batcher.close()

    assert asyncio.run(main()) == [2 * i for i in range(20)]
    assert sizes == [8, 8, 4]
    assert max(queue_times) < 0.5


def test_delay_is_bounded_for_a_lone_request() -> None:
    async def main() -> float:
        batcher = DynamicBatcher(lambda xs: xs, max_batch_size=64, max_delay_s=0.02)
        start = time.perf_counter()
        await batcher.submit(1)
        elapsed = time.perf_counter() - start
        await batcher.close()
        return elapsed

    elapsed = asyncio.run(main())
    assert 0.015 <= elapsed < 0.5


def test_without_a_delay_a_batch_is_what_arrived_in_one_loop_turn() -> None:
    sizes: list[int] = []

    async def main() -> tuple[list[int], int]:
        batcher = DynamicBatcher(
            lambda xs: xs, max_batch_size=64, observer=lambda n, _: sizes.append(n)
        )
        together = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
        start = time.perf_counter()
        await batcher.submit(9)
        alone = time.perf_counter() - start
        await batcher.close()
        return together, alone

    together, alone = asyncio.run(main())
    assert together == list(range(5))
    assert sizes == [5, 1]
    assert alone < 0.01  # a lone item waits for nothing but the end of the turn


def test_an_item_returned_as_an_exception_fails_alone() -> None:
    def halve(items: list[int]) -> list[int | Exception]:
        return [ValueError(f"{i} is odd") if i % 2 else i // 2 for i in items]

    async def main() -> list[object]:
        batcher = DynamicBatcher(halve)
        try:
            return await asyncio.gather(
                *(batcher.submit(i) for i in range(4)), return_exceptions=True
            )
        finally:
            await batcher.close()

    out = asyncio.run(main())
    assert out[0] == 0 and out[2] == 1
    assert isinstance(out[1], ValueError) and str(out[1]) == "1 is odd"
    assert isinstance(out[3], ValueError)


def test_a_cancelled_caller_is_skipped_and_close_fails_the_pending() -> None:
    seen: list[list[int]] = []

    def record(items: list[int]) -> list[int]:
        seen.append(list(items))
        return items

    async def main() -> tuple[object, object]:
        batcher = DynamicBatcher(record, max_delay_s=0.05)
        cancelled = asyncio.ensure_future(batcher.submit(1))
        kept = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)
        cancelled.cancel()
        first = await kept
        waiting = asyncio.ensure_future(batcher.submit(3))
        await asyncio.sleep(0)
        await batcher.close()
        closed = await asyncio.gather(waiting, return_exceptions=True)
        late = await asyncio.gather(batcher.submit(4), return_exceptions=True)
        return first, (closed[0], late[0])

    first, (closed, late) = asyncio.run(main())
    assert first == 2 and seen == [[2]]
    assert isinstance(closed, RuntimeError) and "closed" in str(closed)
    assert isinstance(late, RuntimeError) and "closed" in str(late)


def test_errors_reach_every_caller_and_batcher_survives() -> None:
    calls = []

    def flaky(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return items

    async def main() -> tuple[list[object], int]:
        batcher = DynamicBatcher(flaky, max_batch_size=4, max_delay_s=0.01)
        first = await asyncio.gather(*(batcher.submit(i) for i in range(2)), return_exceptions=True)
        second = await batcher.submit(7)
        await batcher.close()
        return first, second

    first, second = asyncio.run(main())
    assert all(isinstance(e, RuntimeError) and "exploded" in str(e) for e in first)
    assert second == 7


def test_wrong_result_count_is_an_error() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(lambda xs: [], max_delay_s=0.0)
        try:
            await batcher.submit(1)
        finally:
            await batcher.close()

    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        asyncio.run(main())


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        DynamicBatcher(lambda xs: xs, max_batch_size=0)
    with pytest.raises(ValueError, match="max_delay_s"):
        DynamicBatcher(lambda xs: xs, max_delay_s=5.0)
