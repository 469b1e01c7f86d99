"""Interleaving vs A/B sample sizes on a tiny world: the pool, the tests and the power."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from recops.data.world import World, WorldConfig
from recops.ope.simulation import noisy_oracle_scores
from recops.sim.experiments import (
    METHODS,
    ExperimentPool,
    PowerCurve,
    SampleSizeResult,
    _linearised,
    _requests_of,
    build_pool,
    power_curves,
)


@pytest.fixture(scope="module")
def world() -> World:
    return World.from_config(WorldConfig(n_users=300, n_items=200, days=3, seed=5))


def _pool(world: World, noise_a: float, noise_b: float, seed_b: int = 12) -> ExperimentPool:
    return build_pool(
        world,
        noisy_oracle_scores(world, noise=noise_a, seed=11),
        noisy_oracle_scores(world, noise=noise_b, seed=seed_b),
        retrieval=noisy_oracle_scores(world, noise=1.0, seed=10),
        n_requests=800,
        n_candidates=12,
        k=5,
        rng=np.random.default_rng(0),
    )


@pytest.fixture(scope="module")
def pool(world: World) -> ExperimentPool:
    return _pool(world, 0.0, 3.0)


def test_the_pool_holds_each_rankers_top_k_and_the_exact_click_probabilities(
    world: World,
) -> None:
    pool = _pool(world, 0.0, 3.0)
    assert pool.slate_size == 5 and pool.offsets[-1] == 800
    # Rows are grouped by user: one offsets range per pool user.
    assert np.all(np.diff(pool.offsets) >= 1) and pool.n_users == pool.offsets.size - 1
    # The oracle's slate is the best 5 by true attraction, best first.
    assert np.all(np.diff(pool.attraction_a, axis=1) <= 1e-12)
    np.testing.assert_allclose(pool.clicks_a, pool.attraction_a * world.examination(np.arange(5)))
    for slates in (pool.slates_a, pool.slates_b):
        assert all(np.unique(row).size == 5 for row in slates)
    # The better ranker is better, and true_ctr is the mean slot probability.
    assert pool.true_ctr("a") > pool.true_ctr("b")
    assert pool.true_ctr("a") == pytest.approx(pool.clicks_a.mean())


def test_requests_of_lists_every_draws_requests() -> None:
    offsets = np.array([0, 2, 3, 6])
    rows, owner = _requests_of(offsets, np.array([2, 0, 2]))
    np.testing.assert_array_equal(rows, [3, 4, 5, 0, 1, 3, 4, 5])
    np.testing.assert_array_equal(owner, [0, 0, 0, 1, 1, 2, 2, 2])


def test_linearised_values_carry_the_delta_method_variance() -> None:
    rng = np.random.default_rng(1)
    shown = rng.integers(1, 40, size=500).astype(float)
    clicks = rng.binomial(shown.astype(int), 0.1).astype(float)
    values = _linearised(clicks, shown)
    ratio = clicks.sum() / shown.sum()
    assert values.mean() == pytest.approx(ratio, rel=1e-12)
    # Textbook delta method: Var(X̄/Ȳ) ≈ (s_X² - 2R s_XY + R² s_Y²) / (n Ȳ²).
    cov = np.cov(clicks, shown, ddof=1)
    delta = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (500 * shown.mean() ** 2)
    assert values.var(ddof=1) / 500 == pytest.approx(delta, rel=1e-12)


def test_identical_rankers_give_false_positives_near_alpha(world: World) -> None:
    """A/A: the same ranker on both sides; no method may prefer one beyond α."""
    pool = _pool(world, 1.0, 1.0, seed_b=11)
    np.testing.assert_array_equal(pool.slates_a, pool.slates_b)
    result = power_curves(
        pool, users=(60,), replications=400, rng=np.random.default_rng(2), saturate=0.99
    )
    for curve in result.curves:
        rate = curve.power[0] + curve.wrong[0]  # significant either way
        assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400), curve.method


def test_a_much_better_ranker_is_found_and_interleaving_needs_fewer_users(
    pool: ExperimentPool,
) -> None:
    result = power_curves(
        pool, users=(4, 8, 16, 32, 64, 128, 256), replications=150, rng=np.random.default_rng(3)
    )
    assert [c.method for c in result.curves] == list(METHODS)
    for curve in result.curves:
        assert curve.users_needed is not None, curve.method
        assert max(curve.wrong) <= 0.05
        # A method stops once its power saturates.
        assert curve.power[-1] >= 0.97 or curve.users[-1] == 256
    interleaving = result.curve("interleaving").users_needed
    ab = result.curve("ab_welch").users_needed
    assert interleaving is not None and ab is not None and interleaving < ab
    assert result.ratio == pytest.approx(ab / interleaving)


def test_users_needed_interpolates_on_log_users() -> None:
    curve = PowerCurve("ab_welch", (100, 400), (0.6, 1.0), (0.0, 0.0), 0.8)
    assert curve.users_needed == pytest.approx(200.0)  # half-way on log n
    assert curve.needed_text() == "~200"
    early = PowerCurve("interleaving", (10, 20), (0.9, 1.0), (0.0, 0.0), 0.8)
    assert early.users_needed == 10.0 and early.needed_text() == "≤ 10"
    never = PowerCurve("ab_delta", (10, 20), (0.1, 0.3), (0.0, 0.0), 0.8)
    assert never.users_needed is None and never.needed_text() == "> 20"


def test_the_result_prints_and_serialises(pool: ExperimentPool) -> None:
    result = power_curves(pool, users=(8, 64), replications=20, rng=np.random.default_rng(4))
    assert isinstance(result, SampleSizeResult)
    console = Console(record=True, width=200)
    console.print(result.table())
    text = console.export_text()
    assert "team-draft interleaving" in text and "for 80%" in text and "true CTR" in text
    d = json.loads(json.dumps(result.to_dict()))
    assert {c["method"] for c in d["curves"]} == set(METHODS)
    assert "users_needed" in d["curves"][0] and "ratio" in d
    with pytest.raises(KeyError, match="no curve for 'x'"):
        result.curve("x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": (10, 5)}, "`users` must be increasing ints >= 2"),
        ({"users": (1, 5)}, "`users` must be increasing ints >= 2"),
        ({"replications": 0}, "`replications` must be a positive int"),
        ({"alpha": 0.0}, r"`alpha` must be in \(0, 1\)"),
        ({"power": 1.0}, r"`power` must be in \(0, 1\)"),
    ],
)
def test_bad_arguments_are_refused(
    pool: ExperimentPool, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        power_curves(pool, rng=np.random.default_rng(0), **kwargs)  # type: ignore[arg-type]


def test_k_beyond_the_candidates_is_refused(world: World) -> None:
    score = noisy_oracle_scores(world, noise=1.0, seed=1)
    with pytest.raises(ValueError, match=r"`k` must be an int in 1\.\.n_candidates=4"):
        build_pool(
            world,
            score,
            score,
            retrieval=score,
            n_requests=10,
            n_candidates=4,
            k=5,
            rng=np.random.default_rng(0),
        )
