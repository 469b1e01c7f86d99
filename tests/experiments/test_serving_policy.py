"""The server's policy step: exact marginals of head + fill, against enumeration and sampling."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from recops.experiments.policies import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    PlackettLucePolicy,
    RankingPolicy,
)
from recops.experiments.serving_policy import (
    MAX_HEAD_SUBSETS,
    EpsilonGreedyServing,
    GreedyServing,
    PlackettLuceServing,
    ServingPolicy,
    Slate,
    build_policy,
)

# (n, k, pool, explore_slots): the serving shape, and every edge the sizes can take.
SHAPES = [
    (12, 6, 7, 3),  # head, fill from the pool and from beyond it
    (8, 5, 8, 2),  # pool = n
    (9, 3, 5, 3),  # k = explore_slots: no fill
    (9, 2, 5, 4),  # k < explore_slots: the head is cut to k
    (6, 8, 4, 2),  # k > n: n items shown
    (7, 5, 3, 3),  # explore_slots = pool: the head permutes the pool
    (10, 4, 20, 1),  # pool > n, one randomised slot
    (5, 1, 5, 1),  # one position
]


def _exploring(pool: int, slots: int) -> list[ServingPolicy]:
    return [
        PlackettLuceServing(temperature=0.7, pool=pool, explore_slots=slots),
        PlackettLuceServing(temperature=3.0, pool=pool, explore_slots=slots),
        EpsilonGreedyServing(epsilon=0.3, pool=pool, explore_slots=slots),
        EpsilonGreedyServing(epsilon=1.0, pool=pool, explore_slots=slots),
    ]


def _scores(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n)


def _head_reference(policy: ServingPolicy, pool_scores: np.ndarray, h: int) -> RankingPolicy:
    """The existing policy that the head of ``policy`` is, over the pool's scores."""
    if isinstance(policy, PlackettLuceServing):
        return PlackettLucePolicy(slate_size=h, temperature=policy.temperature)
    assert isinstance(policy, EpsilonGreedyServing)
    return EpsilonGreedyPolicy(slate_size=h, epsilon=policy.epsilon)


def _enumerated(
    policy: ServingPolicy, scores: np.ndarray, k: int
) -> dict[tuple[int, ...], np.ndarray]:
    """Every possible slate (candidate indices) with its prefix probabilities.

    Each ordered head's probability comes from the existing policy of its kind on the
    pool's scores; the fill is written out by hand: the best remaining candidates.
    """
    order = np.argsort(-scores, kind="stable")
    n = scores.shape[0]
    size, m = min(k, n), min(policy.pool, n)
    h = min(policy.explore_slots, size, m)
    pool_scores = scores[order[:m]]
    reference = _head_reference(policy, pool_scores, h)
    slates = {}
    for head in itertools.permutations(range(m), h):
        prefix = reference.prefix_probabilities(pool_scores, np.array(head))
        fill = [r for r in range(n) if r not in head][: size - h]
        ranks = [*head, *fill]
        slates[tuple(order[ranks].tolist())] = np.concatenate(
            [prefix, np.full(size - h, prefix[-1])]
        )
    return slates


def _marginals_of(slates: dict[tuple[int, ...], np.ndarray], n: int, size: int) -> np.ndarray:
    marg = np.zeros((n, size))
    for slate, prefix in slates.items():
        marg[list(slate), np.arange(size)] += prefix[-1]
    return marg


@pytest.mark.parametrize(("n", "k", "pool", "slots"), SHAPES)
def test_marginals_equal_the_enumeration_of_every_head(
    n: int, k: int, pool: int, slots: int
) -> None:
    scores = _scores(n, seed=n * 100 + k)
    for policy in _exploring(pool, slots):
        marg = policy.marginals(scores, k)
        slates = _enumerated(policy, scores, k)
        assert sum(p[-1] for p in slates.values()) == pytest.approx(1.0)
        np.testing.assert_allclose(marg, _marginals_of(slates, n, min(k, n)), atol=1e-12)
        np.testing.assert_allclose(marg.sum(axis=0), 1.0, atol=1e-12)
        assert np.all(marg.sum(axis=1) <= 1.0 + 1e-12)
        assert np.all(marg >= 0.0)


@pytest.mark.parametrize(("n", "k", "pool", "slots"), SHAPES)
def test_selected_slates_carry_their_exact_propensities(
    n: int, k: int, pool: int, slots: int
) -> None:
    scores = _scores(n, seed=n * 100 + k)
    rng = np.random.default_rng(1)
    for policy in _exploring(pool, slots):
        marg = policy.marginals(scores, k)
        slates = _enumerated(policy, scores, k)
        for _ in range(20):
            slate = policy.select(scores, k, rng)
            assert len(slate) == min(k, n)
            assert tuple(slate.items.tolist()) in slates
            np.testing.assert_allclose(
                slate.propensity, marg[slate.items, np.arange(len(slate))], atol=1e-15
            )
            np.testing.assert_allclose(
                slate.prefix_propensity, slates[tuple(slate.items.tolist())], atol=1e-15
            )
            np.testing.assert_array_equal(slate.scores, scores[slate.items])


@pytest.mark.parametrize(
    "policy",
    [
        PlackettLuceServing(temperature=0.8, pool=8, explore_slots=3),
        EpsilonGreedyServing(epsilon=0.4, pool=8, explore_slots=3),
        GreedyServing(),
    ],
    ids=repr,
)
def test_selected_slates_follow_the_marginals(policy: ServingPolicy) -> None:
    scores, k, draws = _scores(14, seed=3), 6, 20_000
    rng = np.random.default_rng(2)
    counts = np.zeros((14, k))
    for _ in range(draws):
        counts[policy.select(scores, k, rng).items, np.arange(k)] += 1
    marg = policy.marginals(scores, k)
    se = np.sqrt(marg * (1 - marg) / draws)
    # All 84 cells within 4.5 standard errors (the exact zeros must stay zero).
    assert np.all(np.abs(counts / draws - marg) <= 4.5 * se + 1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_full_head_is_the_existing_policy(k: int) -> None:
    """explore_slots = k and pool = n: the existing policies' exact marginals and prefixes."""
    scores = _scores(6, seed=k)
    rng = np.random.default_rng(4)
    pairs: list[tuple[ServingPolicy, RankingPolicy]] = [
        (
            PlackettLuceServing(temperature=0.6, pool=6, explore_slots=k),
            PlackettLucePolicy(slate_size=k, temperature=0.6),
        ),
        (
            EpsilonGreedyServing(epsilon=0.25, pool=6, explore_slots=k),
            EpsilonGreedyPolicy(slate_size=k, epsilon=0.25),
        ),
        (GreedyServing(), GreedyPolicy(slate_size=k)),
    ]
    for serving, existing in pairs:
        np.testing.assert_allclose(
            serving.marginals(scores, k), existing.marginals(scores)[0], atol=1e-13
        )
        for _ in range(10):
            slate = serving.select(scores, k, rng)
            np.testing.assert_allclose(
                slate.prefix_propensity,
                existing.prefix_probabilities(scores, slate.items),
                atol=1e-13,
            )


def test_ties_are_broken_towards_the_lower_index() -> None:
    scores = np.array([1.0, 2.0, 1.0, 2.0, 0.0, 1.0])
    slate = GreedyServing().select(scores, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(slate.items, [1, 3, 0, 2])
    policy = EpsilonGreedyServing(epsilon=0.0, pool=3, explore_slots=2)
    assert policy.select(scores, 4, np.random.default_rng(0)).items.tolist() == [1, 3, 0, 2]
    marg = PlackettLuceServing(pool=3, explore_slots=2).marginals(scores, 4)
    # Ranks: 1, 3, 0, 2, 5, 4. Candidate 2 ties with 0 but ranks after it, outside the
    # pool of 3: the head takes two of the pool, the fill the third, then candidate 2.
    # Candidate 5 ranks fifth: never in a slate of 4.
    np.testing.assert_array_equal(marg[2], [0.0, 0.0, 0.0, 1.0])
    assert np.all(marg[5] == 0.0)


def test_the_greedy_slate_is_the_fill_of_an_empty_head() -> None:
    scores = _scores(30, seed=7)
    slate = GreedyServing().select(scores, 10, np.random.default_rng(0))
    marg = GreedyServing().marginals(scores, 10)
    np.testing.assert_array_equal(marg[slate.items, np.arange(10)], 1.0)
    np.testing.assert_array_equal(marg.sum(axis=0), 1.0)


def test_extreme_scores_keep_exact_finite_propensities() -> None:
    """Weights that underflow, and a dominant item that would cancel W - w, stay exact."""
    scores = np.array([0.0, -30.0, -31.0, -2000.0, -2001.0, -2002.0, -5000.0])
    policy = PlackettLuceServing(temperature=0.5, pool=7, explore_slots=3)
    marg = policy.marginals(scores, 5)
    assert np.all(np.isfinite(marg))
    np.testing.assert_allclose(marg.sum(axis=0), 1.0, atol=1e-12)
    # After the first item, candidate 1 is e^2 times as likely as candidate 2.
    p2 = 1.0 / (1.0 + np.exp(-2.0))
    assert marg[1, 1] == pytest.approx(p2, rel=1e-9)
    slate = policy.select(scores, 5, np.random.default_rng(0))
    assert np.all(np.isfinite(slate.prefix_propensity)) and slate.slate_propensity > 0


def test_no_candidates_is_an_empty_slate() -> None:
    for policy in [GreedyServing(), *_exploring(5, 2)]:
        slate = policy.select(np.zeros(0), 4, np.random.default_rng(0))
        assert len(slate) == 0 and slate.slate_propensity == 1.0
        assert policy.marginals([], 4).shape == (0, 0)


def test_slate_to_dict_is_plain_lists() -> None:
    slate = PlackettLuceServing(pool=4, explore_slots=2).select(
        _scores(6), 3, np.random.default_rng(0)
    )
    d = slate.to_dict()
    assert set(d) == {"items", "propensity", "prefix_propensity", "scores"}
    assert all(isinstance(v, list) and len(v) == 3 for v in d.values())
    assert isinstance(d["items"][0], int) and isinstance(d["propensity"][0], float)
    assert isinstance(slate, Slate)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "greedy"},
        {"kind": "epsilon_greedy", "epsilon": 0.2, "pool": 10, "explore_slots": 2},
        {"kind": "plackett_luce", "temperature": 0.5, "pool": 20, "explore_slots": 3},
        {
            "kind": "softmax_bandit",
            "temperature": 1.0,
            "pool": 20,
            "explore_slots": 3,
            "prior_ctr": 0.05,
            "prior_weight": 20.0,
            "bonus": 1.0,
        },
    ],
)
def test_build_policy_round_trips_its_spec(spec: dict[str, object]) -> None:
    policy = build_policy(spec, n_items=100)
    assert policy.kind == spec["kind"]
    assert policy.spec() == spec
    assert build_policy(policy.spec(), n_items=100).spec() == spec


def test_build_policy_fills_in_defaults() -> None:
    policy = build_policy({"kind": "plackett_luce"})
    assert policy.spec() == {
        "kind": "plackett_luce",
        "temperature": 1.0,
        "pool": 20,
        "explore_slots": 3,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "thompson"}, "`kind` must be one of greedy, epsilon_greedy"),
        ({"pool": 3}, "`kind` must be one of"),
        ({"kind": "greedy", "pool": 3}, "unknown parameter(s) pool for `greedy`"),
        ({"kind": "plackett_luce", "tau": 1}, "unknown parameter(s) tau for `plackett_luce`"),
        ({"kind": "plackett_luce", "temperature": 0}, "`temperature` must be a positive"),
        ({"kind": "epsilon_greedy", "epsilon": 1.5}, "`epsilon` must be a float in [0, 1]"),
        ({"kind": "epsilon_greedy", "pool": 2, "explore_slots": 3}, "must not exceed `pool`"),
        ({"kind": "plackett_luce", "pool": 0}, "`pool` must be a positive int"),
        ({"kind": "plackett_luce", "pool": 1000, "explore_slots": 5}, "C(pool, explore_slots)"),
        ({"kind": "softmax_bandit"}, "`n_items` (the model's catalog size) is required"),
    ],
)
def test_build_policy_refuses_bad_specs(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_policy(spec)


def test_the_budget_is_the_documented_one() -> None:
    # 20 and 3 (the documented serving shape) is far inside; the config's extremes are not.
    PlackettLuceServing(pool=20, explore_slots=3)
    PlackettLuceServing(pool=60, explore_slots=3)  # 34,220 subsets
    with pytest.raises(ValueError, match=f"at most {MAX_HEAD_SUBSETS:,}"):
        PlackettLuceServing(pool=40, explore_slots=5)


@pytest.mark.parametrize(
    ("scores", "k", "message"),
    [
        ([[1.0, 2.0]], 2, r"`scores` must have shape \(n_candidates,\)"),
        ([1.0, np.nan], 2, "`scores` must be finite"),
        ([1.0, 2.0], 0, "`k` must be a positive int"),
        ([1.0, 2.0], 1.5, "`k` must be a positive int"),
    ],
)
def test_select_refuses_bad_input(scores: object, k: object, message: str) -> None:
    for policy in [GreedyServing(), PlackettLuceServing()]:
        with pytest.raises(ValueError, match=message):
            policy.select(scores, k, np.random.default_rng(0))  # type: ignore[arg-type]
