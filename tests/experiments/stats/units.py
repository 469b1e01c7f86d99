"""Simulated per-unit tables for the analysis, report and CLI tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_units(
    n: int = 4000,
    *,
    lift: float = 0.0,
    latency_lift: float = 0.0,
    split: dict[str, float] | None = None,
    seed: int = 0,
    pre: bool = True,
) -> pd.DataFrame:
    """Users with clicks, impressions, latency and their pre-period values.

    ``lift`` multiplies every treatment's click-through, ``latency_lift`` its latency;
    ``split`` is the true allocation (default: control and ``b`` half each).
    """
    rng = np.random.default_rng(seed)
    split = split or {"control": 0.5, "b": 0.5}
    names = list(split)
    variant = rng.choice(names, size=n, p=np.array(list(split.values())) / sum(split.values()))
    treated = variant != names[0]
    taste = rng.beta(2.0, 25.0, n)
    activity = rng.gamma(2.0, 5.0, n)
    impressions = rng.poisson(activity) + 1
    clicks = rng.binomial(impressions, np.clip(taste * np.where(treated, 1 + lift, 1.0), 0, 1))
    latency = rng.gamma(9.0, 10.0, n) * np.where(treated, 1 + latency_lift, 1.0)
    frame = pd.DataFrame(
        {
            "unit_id": [f"u{i}" for i in range(n)],
            "variant": variant,
            "clicks": clicks,
            "impressions": impressions,
            "latency_ms": latency.round(2),
            "timestamp": 1_790_000_000 + np.sort(rng.integers(0, 14 * 86_400, n)),
        }
    )
    if pre:
        pre_impressions = rng.poisson(activity)
        frame["pre_clicks"] = rng.binomial(pre_impressions, taste)
        frame["pre_impressions"] = pre_impressions
    return frame
