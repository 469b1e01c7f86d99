"""Computes the served versions' item priors ahead of time, off the event loop, rate-limited.

The prior is O(n_items) (16-70 ms at 100k items). Requests never compute it: they
take the cached window nearest to theirs (:class:`recops.serving.prior_cache.PriorCache`).
This background task computes, in a thread:

* for every loaded version, the current window and the one starting :data:`LEAD_S`
  later, before it starts, so live requests find theirs ready (two computations per
  refresh window and version);
* the windows requests asked for and did not find (a replay's ``now``, see
  :mod:`recops.serving.clock`), most recent first, at most
  ``prior_computations_per_s`` per second: however many windows clients ask for,
  the prior costs at most that share of a core.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi.concurrency import run_in_threadpool

from recops.serving.context import ServerContext
from recops.serving.quotas import TokenBucket

log = logging.getLogger("recops.serving")

#: The next window's item prior is computed this many seconds before it starts.
LEAD_S = 5
#: How often the prefetcher looks for work.
PREFETCH_S = 0.25


async def prefetch_prior(ctx: ServerContext, now: int, budget: TokenBucket | None = None) -> int:
    """Compute the priors due at ``now`` in a thread (asked-for ones within ``budget``).

    Returns
    -------
    int
        Priors computed.
    """
    computed = 0
    bundles = ctx.manager.loaded()
    for bundle in bundles:
        for moment in (now, now + LEAD_S):
            if not bundle.prior_cached(moment):
                await run_in_threadpool(bundle.compute_prior, moment)
                computed += 1
    for bundle in bundles:
        for window in bundle.wanted_priors():
            if budget is not None and not budget.take():
                return computed
            await run_in_threadpool(bundle.compute_prior, window)
            computed += 1
    return computed


async def prefetch_forever(ctx: ServerContext) -> None:
    """Keep every loaded version's prior one window ahead, and serve asked-for windows."""
    rate = ctx.settings.prior_computations_per_s
    budget = TokenBucket(rate, max(1.0, rate))
    while True:
        try:
            await prefetch_prior(ctx, int(time.time()), budget)
        except Exception:  # a failed prefetch leaves the work to the next round
            log.exception("computing the item prior ahead of time failed")
        await asyncio.sleep(PREFETCH_S)
