"""Are recops' A/B statistics valid? Many simulated experiments where the truth is known.

Two sources of units, each analysed with the ratio metric ``clicks/impressions``
(delta method) as ``recops experiment analyze`` would:

* **plain**: users with heterogeneous activity (impressions ~ 1 + Poisson(Gamma(2, 5)))
  and click-through (Beta(2, 25)), clicks Binomial, a pre-period of the same users;
  the treatment multiplies every user's click-through by ``1 + lift``.
* **world**: users of the world generator (``recops.data.world``) with their requests;
  control shows the retrieval model's top 5 of 20 candidates, the treatment re-ranks
  the candidates with a better model (a noisy oracle) on 30% of requests; clicks are
  drawn from the world's exact click model (``World.click_probability``, position bias
  included). A/A runs show the control policy to both arms. Units are drawn with
  replacement from the world's users, so the true CTR of each policy is the exact
  expected clicks over impressions.

For each: the A/A false-positive rate of the fixed-horizon test (read once), of the
same test read at 50 looks ("peeking", stopping at the first p < α) and of the
confidence sequence read at the same looks; the coverage of the 95% interval of the
absolute lift (and the confidence sequence's coverage at all looks at once); the power
for the known lift; CUPED's variance reduction (reported, and measured as the drop of
the lift estimates' variance across experiments). SRM: the detection rate of the χ²
test on a split where the treatment loses some units, and its false-alarm rate.
Every rate comes with its binomial standard error ``sqrt(p (1 − p) / n)``.
Interleaving: how many users team-draft interleaving and an A/B test of the same two
rankers need for the correct verdict with 80% power (:mod:`recops.sim.experiments`).

Usage::

    python benchmarks/experiment_validity.py            # ~5 minutes on 2 cores
    python benchmarks/experiment_validity.py --quick    # ~1 minute
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from recops.data.world.config import WorldConfig
from recops.data.world.truth import World
from recops.experiments.stats import (
    CupedArm,
    cuped,
    sample_ratio_test,
    summarize_ratio,
    welch_test,
)
from recops.experiments.stats.timeline import running_tests
from recops.ope.simulation import noisy_oracle_scores, sample_requests
from recops.sim.experiments import sample_size_study

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "experiment_validity.json"
ALPHA = 0.05
N_LOOKS = 50
SLATE = 5
BETTER_SHARE = 0.3
console = Console(width=150)


@dataclass(frozen=True)
class Row:
    """One line of the table: a rate (or mean) with its standard error."""

    source: str
    quantity: str
    value: float
    std_error: float
    n: int
    target: str


@dataclass(frozen=True)
class Units:
    """Experiments stacked along axis 0, units in arrival order along axis 1."""

    clicks: np.ndarray
    impressions: np.ndarray
    pre_clicks: np.ndarray
    pre_impressions: np.ndarray
    treated: np.ndarray


Simulate = Callable[[np.random.Generator, int, int, bool], Units]


def _rate(hits: np.ndarray) -> tuple[float, float]:
    p = float(np.mean(hits))
    return p, float(np.sqrt(p * (1 - p) / hits.size))


# ------------------------------------------------------------------ plain simulated units
PLAIN_CTR = 2.0 / 27.0  # E[Beta(2, 25)]


def plain_units(rng: np.random.Generator, n_sims: int, n_units: int, lift: float) -> Units:
    """Heterogeneous users; the treatment multiplies click-through by ``1 + lift``."""
    shape = (n_sims, n_units)
    treated = rng.random(shape) < 0.5
    taste = rng.beta(2.0, 25.0, shape)
    activity = rng.gamma(2.0, 5.0, shape)
    impressions = rng.poisson(activity) + 1
    ctr = np.minimum(taste * np.where(treated, 1.0 + lift, 1.0), 1.0)
    pre_impressions = rng.poisson(activity)
    return Units(
        clicks=rng.binomial(impressions, ctr).astype(np.float64),
        impressions=impressions.astype(np.float64),
        pre_clicks=rng.binomial(pre_impressions, taste).astype(np.float64),
        pre_impressions=pre_impressions.astype(np.float64),
        treated=treated,
    )


# ------------------------------------------------------------------ the world's users
@dataclass(frozen=True)
class WorldPool:
    """Per-slot click probabilities of every pool user's requests, flattened by user."""

    offsets: np.ndarray  # (U + 1,) slot ranges per user
    p_control: np.ndarray  # (S,) exact click probability of each slot under control
    p_treatment: np.ndarray
    pre_offsets: np.ndarray
    p_pre: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.offsets.size - 1)

    def true_ctr(self, treated: bool) -> float:
        """Expected clicks per impression of a unit drawn uniformly from the pool."""
        p = self.p_treatment if treated else self.p_control
        return float(p.sum() / p.size)


def _slot_probabilities(
    world: World, n_requests: int, rng: np.random.Generator, better: Callable
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users and per-slot click probabilities under control and treatment, ``(R,)``, ``(R, K)``."""
    retrieval = noisy_oracle_scores(world, noise=1.5, seed=1)
    req = sample_requests(world, retrieval, n_requests, 20, rng)
    slots = np.arange(SLATE)
    control_items = req.candidates[:, :SLATE]
    order = np.argsort(-better(req.user, req.candidates, req.t), axis=1, kind="stable")
    better_items = np.take_along_axis(req.candidates, order[:, :SLATE], axis=1)
    # The treatment serves the better ranking on a fixed share of requests (a partial
    # rollout), so the lift is modest and still known exactly.
    served = rng.random(len(req)) < BETTER_SHARE
    treatment_items = np.where(served[:, None], better_items, control_items)
    p_c = world.click_probability(req.user[:, None], control_items, slots, req.t[:, None])
    p_t = world.click_probability(req.user[:, None], treatment_items, slots, req.t[:, None])
    return req.user, p_c, p_t


def _by_user(
    users: np.ndarray, probs: np.ndarray, pool: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Slots of ``pool``'s users, concatenated in pool order, with their offsets."""
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    flat = probs[order].ravel()
    lo = np.searchsorted(sorted_users, pool, side="left") * SLATE
    hi = np.searchsorted(sorted_users, pool, side="right") * SLATE
    pieces = [flat[a:b] for a, b in zip(lo, hi, strict=True)]
    offsets = np.concatenate([[0], np.cumsum(hi - lo)])
    return offsets, np.concatenate(pieces) if pieces else np.empty(0)


def world_pool(quick: bool, rng: np.random.Generator) -> WorldPool:
    cfg = (
        WorldConfig(n_users=1500, n_items=600, days=14, seed=0)
        if quick
        else WorldConfig(n_users=4000, n_items=1500, days=21, seed=0)
    )
    world = World.from_config(cfg)
    better = noisy_oracle_scores(world, noise=1.4, seed=2)
    n_requests = 10_000 if quick else 30_000
    users, p_c, p_t = _slot_probabilities(world, n_requests, rng, better)
    pre_users, p_pre, _ = _slot_probabilities(world, n_requests, rng, better)
    pool = np.unique(users)
    offsets, flat_c = _by_user(users, p_c, pool)
    _, flat_t = _by_user(users, p_t, pool)
    pre_offsets, flat_pre = _by_user(pre_users, p_pre, pool)
    return WorldPool(offsets, flat_c, flat_t, pre_offsets, flat_pre)


def _draw_clicks(
    rng: np.random.Generator, offsets: np.ndarray, probs: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and impressions of independent draws of pool users ``units`` (any shape)."""
    flat_units = units.ravel()
    lengths = offsets[flat_units + 1] - offsets[flat_units]
    starts = np.repeat(
        offsets[flat_units] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths
    )
    idx = starts + np.arange(int(lengths.sum()))
    owner = np.repeat(np.arange(flat_units.size), lengths)
    hits = rng.random(idx.size) < probs[idx]
    clicks = np.bincount(owner, weights=hits, minlength=flat_units.size)
    return clicks.reshape(units.shape), lengths.reshape(units.shape).astype(np.float64)


def world_simulator(pool: WorldPool) -> Simulate:
    def simulate(rng: np.random.Generator, n_sims: int, n_units: int, ab: bool) -> Units:
        units = rng.integers(0, pool.n_users, size=(n_sims, n_units))
        treated = rng.random(units.shape) < 0.5
        # Clicks under each policy for every draw, then keep the arm's: same slots either way.
        control, impressions = _draw_clicks(rng, pool.offsets, pool.p_control, units)
        if ab:
            treatment, _ = _draw_clicks(rng, pool.offsets, pool.p_treatment, units)
            clicks = np.where(treated, treatment, control)
        else:
            clicks = control
        pre_clicks, pre_impressions = _draw_clicks(rng, pool.pre_offsets, pool.p_pre, units)
        return Units(clicks, impressions, pre_clicks, pre_impressions, treated)

    return simulate


# ------------------------------------------------------------------ the measurements
def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def aa_rows(
    source: str, simulate: Simulate, rng: np.random.Generator, n_sims: int, n_units: int
) -> list[Row]:
    looks = np.unique(np.linspace(n_units / N_LOOKS, n_units, N_LOOKS).round().astype(int))
    fixed, naive, seq, covered = [], [], [], []
    for size in track(_chunks(n_sims, 100), description=f"{source}: A/A", console=console):
        u = simulate(rng, size, n_units, False)
        t = running_tests(u.clicks, u.impressions, u.treated, looks, ALPHA, tuning=n_units)
        fixed.append(t.p_value[:, -1] < ALPHA)
        naive.append((t.p_value < ALPHA).any(axis=1))
        seq.append((t.p_value_sequential < ALPHA).any(axis=1))
        covered.append((t.ci_low[:, -1] <= 0) & (t.ci_high[:, -1] >= 0))
    target_fpr = f"≈ {ALPHA:g}"
    out = []
    for name, hits, target in (
        ("A/A false positives, fixed horizon (one look)", fixed, target_fpr),
        (f"A/A false positives, naive test, {len(looks)} looks", naive, f"> {ALPHA:g} (peeking)"),
        (f"A/A false positives, confidence sequence, {len(looks)} looks", seq, f"≤ {ALPHA:g}"),
        ("A/A coverage of the 95% interval", covered, "93–97%"),
    ):
        p, se = _rate(np.concatenate(hits))
        out.append(Row(source, name, p, se, n_sims, target))
    return out


def ab_rows(
    source: str,
    simulate: Simulate,
    rng: np.random.Generator,
    n_sims: int,
    n_units: int,
    truth: float,
    lift_label: str,
) -> list[Row]:
    looks = np.unique(np.linspace(n_units / N_LOOKS, n_units, N_LOOKS).round().astype(int))
    power, power_seq, covered, cs_covered = [], [], [], []
    raw_est, cuped_est, reported = [], [], []
    cuped_power = []
    for size in track(_chunks(n_sims, 100), description=f"{source}: A/B", console=console):
        u = simulate(rng, size, n_units, True)
        t = running_tests(u.clicks, u.impressions, u.treated, looks, ALPHA, tuning=n_units)
        power.append(t.p_value[:, -1] < ALPHA)
        power_seq.append((t.p_value_sequential < ALPHA).any(axis=1))
        covered.append((t.ci_low[:, -1] <= truth) & (truth <= t.ci_high[:, -1]))
        cs_covered.append(((t.cs_low <= truth) & (truth <= t.cs_high)).all(axis=1))
        for i in range(size):
            c, tr = ~u.treated[i], u.treated[i]
            arms = [
                CupedArm(
                    u.clicks[i, m], u.pre_clicks[i, m], u.impressions[i, m], u.pre_impressions[i, m]
                )
                for m in (c, tr)
            ]
            adj = cuped(arms[0], arms[1])
            test = welch_test(adj.control, adj.treatment, ALPHA)
            raw = welch_test(
                summarize_ratio(u.clicks[i, c], u.impressions[i, c]),
                summarize_ratio(u.clicks[i, tr], u.impressions[i, tr]),
                ALPHA,
            )
            raw_est.append(raw.absolute.estimate)
            cuped_est.append(test.absolute.estimate)
            reported.append(adj.variance_reduction)
            cuped_power.append(test.absolute.p_value < ALPHA)
    out = []
    for name, hits, target in (
        (f"coverage of the 95% interval, lift {lift_label}", covered, "93–97%"),
        (f"coverage of the confidence sequence at all {len(looks)} looks", cs_covered, "≥ 95%"),
        (f"power, fixed horizon, lift {lift_label}", power, "reported"),
        (f"power, confidence sequence (any of {len(looks)} looks)", power_seq, "< fixed"),
        ("power, fixed horizon with CUPED", [np.array(cuped_power)], "> fixed"),
    ):
        p, se = _rate(np.concatenate(hits))
        out.append(Row(source, name, p, se, n_sims, target))
    r, c = np.asarray(raw_est), np.asarray(cuped_est)
    measured = 1 - np.var(c) / np.var(r)
    # The two variances share their experiments: bootstrap the experiments for the s.e.
    boot = rng.integers(0, r.size, size=(1000, r.size))
    measured_se = float(np.std(1 - np.var(c[boot], axis=1) / np.var(r[boot], axis=1), ddof=1))
    out.append(
        Row(
            source,
            "CUPED variance reduction, reported (mean)",
            float(np.mean(reported)),
            float(np.std(reported, ddof=1) / np.sqrt(len(reported))),
            n_sims,
            "≈ measured",
        )
    )
    out.append(
        Row(
            source,
            "CUPED variance reduction, measured across experiments",
            float(measured),
            measured_se,
            n_sims,
            "> 0",
        )
    )
    out.append(
        Row(
            source,
            "CUPED lift bias (mean estimate − truth) / truth",
            float((np.mean(c) - truth) / truth),
            float(np.std(c, ddof=1) / np.sqrt(c.size) / abs(truth)),
            n_sims,
            "≈ 0",
        )
    )
    return out


def srm_rows(rng: np.random.Generator, n_sims: int, n_units: int) -> list[Row]:
    """χ² SRM test on counts: a correct 50/50 split, and treatments that lose units."""
    out = []
    for loss, target in ((0.0, "≈ 0.001"), (0.05, "reported"), (0.10, "≈ 1")):
        hits = []
        for _ in range(n_sims):
            treated = rng.binomial(n_units, 0.5)
            kept = rng.binomial(treated, 1 - loss)
            hits.append(sample_ratio_test({"control": n_units - treated, "b": kept}).mismatch)
        p, se = _rate(np.array(hits))
        label = "correct split" if loss == 0 else f"treatment loses {loss:.0%} of its units"
        out.append(
            Row(
                "counts",
                f"SRM flagged (p < 0.001), {label}, {n_units:,} units",
                p,
                se,
                n_sims,
                target,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Fewer experiments (under a minute).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n_aa, n_ab, n_units = (2000, 600, 2000) if args.quick else (10_000, 3000, 4000)
    started = time.perf_counter()
    rows: list[Row] = []

    plain_lift = 0.15
    rows += aa_rows("plain", lambda g, s, n, ab: plain_units(g, s, n, 0.0), rng, n_aa, n_units)
    rows += ab_rows(
        "plain",
        lambda g, s, n, ab: plain_units(g, s, n, plain_lift),
        rng,
        n_ab,
        n_units,
        truth=PLAIN_CTR * plain_lift,
        lift_label=f"+{plain_lift:.0%} CTR",
    )
    with console.status("world: sampling requests and exact click probabilities"):
        pool = world_pool(args.quick, rng)
    simulate = world_simulator(pool)
    ctr_c, ctr_t = pool.true_ctr(False), pool.true_ctr(True)
    rows += aa_rows("world", simulate, rng, n_aa, n_units)
    rows += ab_rows(
        "world",
        simulate,
        rng,
        n_ab,
        n_units,
        truth=ctr_t - ctr_c,
        lift_label=f"{ctr_c:.4f} → {ctr_t:.4f} CTR ({ctr_t / ctr_c - 1:+.1%})",
    )
    rows += srm_rows(rng, n_aa, 20_000)
    with console.status("interleaving vs A/B: users needed on the world, same two rankers"):
        sizes = sample_size_study(quick=args.quick, seed=args.seed)
    elapsed = time.perf_counter() - started

    table = Table(title=f"Experiment validity (α = {ALPHA:g}, {n_units:,} units per experiment)")
    for column in ("source", "quantity", "value", "± s.e.", "experiments", "target"):
        table.add_column(column, justify="left" if column in ("source", "quantity") else "right")
    for r in rows:
        table.add_row(
            r.source, r.quantity, f"{r.value:.4f}", f"{r.std_error:.4f}", str(r.n), r.target
        )
    console.print(table)
    console.print(sizes.table())
    console.print(f"{elapsed:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "quick": args.quick,
                "seed": args.seed,
                "alpha": ALPHA,
                "looks": N_LOOKS,
                "units_per_experiment": n_units,
                "world_true_ctr": {"control": ctr_c, "treatment": ctr_t},
                "seconds": elapsed,
                "rows": [asdict(r) for r in rows],
                "interleaving_vs_ab": sizes.to_dict(),
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
