"""Computes the served model's item prior ahead of time, off the event loop.

The prior is O(n_items) (16-70 ms at 100k items): computed by the first request of
a refresh window, it stalled the event loop once a minute. A background task asks
for the current window and the one starting :data:`LEAD_S` later, in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi.concurrency import run_in_threadpool

from recops.serving.context import ServerContext

log = logging.getLogger("recops.serving")

#: The next window's item prior is computed this many seconds before it starts.
LEAD_S = 5


async def prefetch_prior(ctx: ServerContext, now: int) -> None:
    """Compute, in a thread, the priors of ``now`` and ``LEAD_S`` later for every loaded version."""
    for bundle in ctx.manager.loaded():
        for moment in (now, now + LEAD_S):
            if not bundle.prior_cached(moment):
                await run_in_threadpool(bundle.prior_at, moment)


async def prefetch_forever(ctx: ServerContext) -> None:
    """Keep the priors of every loaded version one window ahead, once a second."""
    while True:
        try:
            await prefetch_prior(ctx, int(time.time()))
        except Exception:  # a failed prefetch leaves the work to the next request
            log.exception("computing the item prior ahead of time failed")
        await asyncio.sleep(1.0)
