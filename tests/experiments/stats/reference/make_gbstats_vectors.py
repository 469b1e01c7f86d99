"""Freeze GrowthBook gbstats 0.8.0 results as test vectors for recops.experiments.stats.

Run by hand in a throw-away virtual environment that has gbstats (see README.md here);
gbstats is not a recops dependency, so pytest and mypy skip this file.

    /tmp/gbstats-venv/bin/python tests/experiments/stats/reference/make_gbstats_vectors.py \
        --out tests/experiments/stats/reference/gbstats_vectors.json

The per-unit data are drawn here once and stored in the JSON (rounded), so the tests
read exactly the numbers gbstats saw, independent of NumPy's random streams.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm

ALPHAS = (0.05, 0.1)
TUNINGS = (5000.0, 800.0)


def mean_stat(y: np.ndarray) -> SampleMeanStatistic:
    return SampleMeanStatistic(n=len(y), sum=float(y.sum()), sum_squares=float((y * y).sum()))


def ratio_stat(x: np.ndarray, y: np.ndarray) -> RatioStatistic:
    return RatioStatistic(
        n=len(x),
        m_statistic=mean_stat(x),
        d_statistic=mean_stat(y),
        m_d_sum_of_products=float((x * y).sum()),
    )


def cuped_stat(post: np.ndarray, pre: np.ndarray) -> RegressionAdjustedStatistic:
    return RegressionAdjustedStatistic(
        n=len(post),
        post_statistic=mean_stat(post),
        pre_statistic=mean_stat(pre),
        post_pre_sum_of_products=float((post * pre).sum()),
        theta=0.0,
    )


def results(make_a, make_b) -> dict:
    """Fixed-horizon and sequential results, absolute and relative, at each alpha / tuning."""
    out: dict = {}
    for alpha in ALPHAS:
        for kind in ("absolute", "relative"):
            test = TwoSidedTTest(
                make_a(), make_b(), FrequentistConfig(alpha=alpha, difference_type=kind)
            )
            res = test.compute_result()
            out[f"fixed_{kind}_alpha{alpha}"] = {
                "estimate": res.expected,
                "ci": list(res.ci),
                "p_value": res.p_value,
                "std_error": res.uplift.stddev,
                "dof": float(test.dof),
                "error_message": res.error_message,
            }
            for tuning in TUNINGS:
                seq = SequentialTwoSidedTTest(
                    make_a(),
                    make_b(),
                    SequentialConfig(
                        alpha=alpha, difference_type=kind, sequential_tuning_parameter=tuning
                    ),
                )
                res = seq.compute_result()
                out[f"sequential_{kind}_alpha{alpha}_tuning{tuning:g}"] = {
                    "estimate": res.expected,
                    "ci": list(res.ci),
                    "p_value": res.p_value,
                    "error_message": res.error_message,
                }
    return out


def datasets(rng: np.random.Generator) -> dict:
    """Three small experiments: a skewed mean metric, a ratio metric, a mean with pre-period."""
    revenue = {
        arm: np.round(rng.lognormal(1.0 + lift, 1.0, n) * (rng.random(n) < 0.3), 2)
        for arm, n, lift in (("control", 300, 0.0), ("treatment", 320, 0.7))
    }
    ratio = {}
    for arm, n, lift in (("control", 500, 0.0), ("treatment", 520, 0.4)):
        impressions = rng.poisson(rng.gamma(2.0, 6.0, n)) + 1
        ctr = np.clip(rng.beta(2.0, 25.0, n) * (1 + lift), 0, 1)
        ratio[arm] = {
            "clicks": rng.binomial(impressions, ctr).astype(float),
            "impressions": impressions.astype(float),
        }
    cuped = {}
    for arm, n, lift in (("control", 400, 0.0), ("treatment", 410, 1.0)):
        level = rng.gamma(3.0, 2.0, n)
        cuped[arm] = {
            "sessions": rng.poisson(level * (1 + 0.05 * lift) + lift).astype(float),
            "pre_sessions": rng.poisson(level).astype(float),
        }
    return {"revenue": revenue, "ratio": ratio, "cuped": cuped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = datasets(np.random.default_rng(20260901))
    rev, rat, cup = data["revenue"], data["ratio"], data["cuped"]
    out = {
        "gbstats_version": importlib.metadata.version("gbstats"),
        "numpy_version": np.__version__,
        "alphas": list(ALPHAS),
        "tunings": list(TUNINGS),
        "data": {
            "revenue": {arm: v.tolist() for arm, v in rev.items()},
            "ratio": {arm: {k: v.tolist() for k, v in cols.items()} for arm, cols in rat.items()},
            "cuped": {arm: {k: v.tolist() for k, v in cols.items()} for arm, cols in cup.items()},
        },
        "revenue": results(lambda: mean_stat(rev["control"]), lambda: mean_stat(rev["treatment"])),
        "ratio": results(
            lambda: ratio_stat(rat["control"]["clicks"], rat["control"]["impressions"]),
            lambda: ratio_stat(rat["treatment"]["clicks"], rat["treatment"]["impressions"]),
        ),
        "cuped": results(
            lambda: cuped_stat(cup["control"]["sessions"], cup["control"]["pre_sessions"]),
            lambda: cuped_stat(cup["treatment"]["sessions"], cup["treatment"]["pre_sessions"]),
        ),
    }
    theta_test = TwoSidedTTest(
        cuped_stat(cup["control"]["sessions"], cup["control"]["pre_sessions"]),
        cuped_stat(cup["treatment"]["sessions"], cup["treatment"]["pre_sessions"]),
    )
    out["cuped_theta"] = theta_test.stat_a.theta
    srm_cases = [
        ([5050, 4950], [0.5, 0.5]),
        ([5200, 4800], [1, 1]),
        ([3000, 3150, 2850], [1, 1, 1]),
        ([2600, 7400], [0.25, 0.75]),
        ([1000, 2150, 1000], [1, 2, 1]),
    ]
    out["srm"] = [
        {"users": users, "weights": weights, "p_value": check_srm(users, weights)}
        for users, weights in srm_cases
    ]
    out["config_defaults"] = {
        "sequential_tuning_parameter": asdict(SequentialConfig())["sequential_tuning_parameter"]
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
