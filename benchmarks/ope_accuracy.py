"""How accurate are recops' off-policy estimators, and how fast?

Three parts:

1. **Open Bandit Dataset** (the classic experiment): estimate the Bernoulli Thompson
   Sampling policy's CTR from the uniform-random policy's logs (``obd/random/all``),
   and compare with BTS's on-policy CTR (``obd/bts/all``). The BTS action
   distribution is the one obp 0.5.7 computes (frozen in
   ``tests/ope/reference/obp_vectors.json``).
2. **Simulated truth**: on the world generator, for several logging/target pairs
   (one with deliberately poor overlap), the estimators' bias, RMSE, interval
   coverage and width across seeds, against the exact value from the click model.
3. **Speed**: time to evaluate 1M logged rows with IPS, SNIPS and DR (reward-model
   predictions given, i.e. excluding its fitting).

Usage::

    python benchmarks/ope_accuracy.py            # a few minutes on 2 cores
    python benchmarks/ope_accuracy.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from recops.data.world.config import WorldConfig
from recops.data.world.truth import World
from recops.experiments.policies import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    PlackettLucePolicy,
    RankingPolicy,
)
from recops.ope.batch import OPEBatch
from recops.ope.doubly_robust import DoublyRobust
from recops.ope.feedback import read_obd
from recops.ope.importance import InverseProbabilityWeighting, SelfNormalizedIPW
from recops.ope.report import default_estimators, recommend
from recops.ope.reward_model import ActionPositionMeanModel, RewardData, cross_fit_predict
from recops.ope.simulation import (
    cross_fitted_q_hat,
    noisy_oracle_scores,
    ope_batch,
    sample_requests,
    simulate_logs,
    slate_batch,
    target_marginals,
    true_value,
)
from recops.ope.slate import SlateIndependentIPS, SlateRewardInteractionIPS, SlateStandardIPS

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "ope" / "reference" / "obp_vectors.json"
console = Console()


def obd_table(data_dir: Path, n_bootstrap: int) -> None:
    """Part 1: BTS's CTR estimated from uniform-random logs, next to its on-policy CTR."""
    logs = read_obd(data_dir / "obd", behavior_policy="random", campaign="all")
    bts_logs = read_obd(data_dir / "obd", behavior_policy="bts", campaign="all")
    truth = float(bts_logs.reward.mean())
    action_dist = np.asarray(json.loads(REFERENCE.read_text())["bts_action_dist"])
    q_hat = cross_fit_predict(ActionPositionMeanModel, RewardData.from_feedback(logs), 2, 0)
    batch = OPEBatch.from_action_dist(logs, action_dist, q_hat)
    table = Table(
        title=(
            f"OBD (random → BTS, campaign all, n={logs.n_rows}): on-policy BTS CTR "
            f"{truth:.5f} ± {1.96 * np.sqrt(truth * (1 - truth) / bts_logs.n_rows):.5f}"
        )
    )
    for col in ("estimator", "estimate", "rel. error", "95% normal CI", "95% bootstrap CI"):
        table.add_column(col, justify="right")
    for estimator in default_estimators(with_reward_model=True):
        normal = estimator.estimate(batch)
        boot = estimator.estimate(
            batch, interval="bootstrap", n_bootstrap=n_bootstrap, random_state=0
        )
        table.add_row(
            estimator.name,
            f"{normal.value:.5f}",
            f"{(normal.value - truth) / truth:+.1%}",
            f"[{normal.ci_low:.5f}, {normal.ci_high:.5f}]",
            f"[{boot.ci_low:.5f}, {boot.ci_high:.5f}]",
        )
    console.print(table)
    console.print(
        f"ESS {normal.ess:.0f} of {normal.n} rows; max weight {normal.max_weight:.1f}. "
        "BTS's own CTR is itself a 10k-row sample (its 95% half-width is shown above)."
    )


@dataclass(frozen=True)
class Scenario:
    """A logging/target pair on the simulated site."""

    name: str
    logging: RankingPolicy
    target: RankingPolicy


def scenarios(slate_size: int, n_candidates: int) -> list[Scenario]:
    """Good, moderate and poor overlap between the current and the challenger policy."""
    return [
        Scenario(
            "PL τ=1 → PL τ=0.5",
            PlackettLucePolicy(slate_size=slate_size, temperature=1.0),
            PlackettLucePolicy(slate_size=slate_size, temperature=0.5),
        ),
        Scenario(
            "ε-greedy 0.3 → PL τ=0.3",
            EpsilonGreedyPolicy(slate_size=slate_size, epsilon=0.3),
            PlackettLucePolicy(slate_size=slate_size, temperature=0.3),
        ),
        Scenario(
            "ε-greedy 0.05 → greedy (poor overlap)",
            EpsilonGreedyPolicy(slate_size=slate_size, epsilon=0.05, explore_top=n_candidates),
            GreedyPolicy(slate_size=slate_size),
        ),
    ]


SLATE_ESTIMATORS = (SlateIndependentIPS(), SlateRewardInteractionIPS(), SlateStandardIPS())


def simulated_table(n_seeds: int, n_requests: int, n_truth: int) -> None:
    """Part 2: bias, RMSE and coverage against the world's exact truth."""
    n_candidates, slate_size = 10, 3
    world = World.from_config(WorldConfig(n_users=1000, n_items=800, days=7, seed=7))
    current = noisy_oracle_scores(world, noise=1.5, seed=1)
    challenger = noisy_oracle_scores(world, noise=0.5, seed=2)
    cases = scenarios(slate_size, n_candidates)

    # The estimand is the population value: the mean over a large independent sample.
    truth_requests = sample_requests(
        world, current, n_truth, n_candidates, np.random.default_rng(10_000)
    )
    truth_scores = challenger(truth_requests.user, truth_requests.candidates, truth_requests.t)
    truths = {}
    for case in cases:
        per_request = true_value(world, truth_requests, truth_scores, case.target)
        truths[case.name] = (float(per_request.mean()), float(per_request.std() / np.sqrt(n_truth)))

    results: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {
        c.name: {} for c in cases
    }
    verdicts: dict[str, list[str]] = {c.name: [] for c in cases}
    for seed in track(range(n_seeds), description="simulated OPE runs", console=console):
        rng = np.random.default_rng(seed)
        requests = sample_requests(world, current, n_requests, n_candidates, rng)
        logging_scores = current(requests.user, requests.candidates, requests.t)
        target_scores = challenger(requests.user, requests.candidates, requests.t)
        for case in cases:
            logs = simulate_logs(world, requests, logging_scores, case.logging, rng)
            marginals = target_marginals(target_scores, case.target)
            q_hat = cross_fitted_q_hat(logs, target_scores, seed=seed)
            batch = ope_batch(logs, marginals, q_hat)
            estimates = [e.estimate(batch) for e in default_estimators(True)]
            verdicts[case.name].append(recommend(estimates).estimator or "none")
            slates = slate_batch(logs, target_scores, case.target, marginals)
            # Slate estimators report clicks per slate; divide by K for CTR per slot.
            estimates += [_per_slot(e.estimate(slates), slate_size) for e in SLATE_ESTIMATORS]
            for est in estimates:
                results[case.name].setdefault(est.estimator, []).append(
                    (est.value, est.ci_low, est.ci_high, est.ess_fraction)
                )

    for case in cases:
        truth, truth_se = truths[case.name]
        table = Table(
            title=(
                f"{case.name}: true CTR {truth:.4f} (±{truth_se:.4f}), {n_seeds} seeds × "
                f"{n_requests} requests × {slate_size} slots"
            )
        )
        for col in ("estimator", "bias", "RMSE", "coverage", "mean CI width", "ESS/n"):
            table.add_column(col, justify="right")
        for name, rows in results[case.name].items():
            arr = np.asarray(rows)
            err = arr[:, 0] - truth
            covered = (arr[:, 1] <= truth) & (truth <= arr[:, 2])
            table.add_row(
                name,
                f"{err.mean():+.4f}",
                f"{np.sqrt(np.mean(err**2)):.4f}",
                f"{covered.mean():.0%}",
                f"{np.mean(arr[:, 2] - arr[:, 1]):.4f}",
                f"{arr[:, 3].mean():.3f}",
            )
        console.print(table)
        names, counts = np.unique(verdicts[case.name], return_counts=True)
        console.print(
            "Recommended estimator across seeds: "
            + ", ".join(f"{n} {c}/{n_seeds}" for n, c in zip(names, counts, strict=True))
        )


def _per_slot(est, slate_size: int):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(
        est,
        value=est.value / slate_size,
        ci_low=est.ci_low / slate_size,
        ci_high=est.ci_high / slate_size,
        std_error=est.std_error / slate_size,
    )


def timing(n_rows: int = 1_000_000) -> None:
    """Part 3: wall time of IPS, SNIPS and DR on 1M rows (80 actions × 3 positions)."""
    rng = np.random.default_rng(0)
    n_actions, len_list = 80, 3
    from recops.ope.feedback import LoggedFeedback

    feedback = LoggedFeedback(
        action=rng.integers(0, n_actions, n_rows),
        reward=(rng.random(n_rows) < 0.005).astype(np.float64),
        pscore=np.full(n_rows, 1 / n_actions),
        n_actions=n_actions,
        position=rng.integers(0, len_list, n_rows),
        len_list=len_list,
    )
    action_dist = rng.dirichlet(np.ones(n_actions), size=len_list).T
    q_fact = rng.random(n_rows) * 0.01
    q_target = rng.random(n_rows) * 0.01
    table = Table(title=f"Time to evaluate {n_rows:,} logged rows (estimate + normal CI + ESS)")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    start = time.perf_counter()
    batch = OPEBatch.from_action_dist(feedback, action_dist)
    table.add_row("build batch from action_dist", f"{time.perf_counter() - start:.3f}")
    with_model = OPEBatch(
        reward=batch.reward,
        pscore=batch.pscore,
        target_pscore=batch.target_pscore,
        q_hat_factual=q_fact,
        q_hat_target=q_target,
    )
    for name, estimator, b in (
        ("IPS", InverseProbabilityWeighting(), batch),
        ("SNIPS", SelfNormalizedIPW(), batch),
        ("DR", DoublyRobust(), with_model),
    ):
        start = time.perf_counter()
        estimator.estimate(b)
        table.add_row(name, f"{time.perf_counter() - start:.3f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seeds", type=int, default=None, help="simulation seeds")
    parser.add_argument("--requests", type=int, default=None, help="requests per seed")
    args = parser.parse_args()
    seeds = args.seeds or (4 if args.quick else 40)
    requests = args.requests or (500 if args.quick else 2000)
    if (args.data_dir / "obd").is_dir():
        obd_table(args.data_dir, n_bootstrap=200 if args.quick else 1000)
    else:
        console.print(f"[yellow]OBD not found under {args.data_dir}; skipping part 1[/yellow]")
    simulated_table(seeds, requests, n_truth=5000 if args.quick else 20000)
    timing()


if __name__ == "__main__":
    main()
