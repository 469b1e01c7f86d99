"""Team-draft interleaving: the merge, click credit, and the preference test against peers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.descriptivestats import sign_test
from statsmodels.stats.weightstats import DescrStatsW, ztest

from recops.experiments.interleaving import (
    NO_TEAM,
    TEAM_A,
    TEAM_B,
    InterleavedSlate,
    analyze_interleaving,
    credit_batch,
    team_draft,
    team_draft_batch,
)


def _check_team_draft(a: list[int], b: list[int], k: int, slate: InterleavedSlate) -> None:
    """The team-draft invariants, checked position by position."""
    shown: list[int] = []
    sizes = [0, 0]
    for item, team in zip(slate.items, slate.teams.tolist(), strict=True):
        ranking = (a, b)[team]
        other = (a, b)[1 - team]
        remaining = [x for x in ranking if x not in shown]
        if remaining:
            # A team picks its best item not yet shown ...
            assert item == remaining[0]
            # ... and only when it is behind, level, or the other team is spent.
            assert sizes[team] <= sizes[1 - team] or not [x for x in other if x not in shown]
        shown.append(item)  # type: ignore[arg-type]
        sizes[team] += 1
    assert len(set(shown)) == len(shown)
    assert len(shown) == min(k, len(set(a) | set(b)))


@pytest.mark.parametrize("seed", range(30))
def test_team_draft_keeps_its_invariants(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.permutation(15)[: rng.integers(1, 10)].tolist()
    b = rng.permutation(15)[: rng.integers(1, 10)].tolist()
    k = int(rng.integers(1, 12))
    _check_team_draft(a, b, k, team_draft(a, b, k, rng))


def test_identical_rankings_alternate_in_rounds() -> None:
    ranking = list(range(10))
    slate = team_draft(ranking, ranking, 10, np.random.default_rng(0))
    assert slate.items == ranking
    # Each round of two positions has one pick of each team.
    assert np.all(slate.teams.reshape(5, 2).sum(axis=1) == 1)


def test_a_spent_ranking_leaves_the_picks_to_the_other() -> None:
    slate = team_draft([1], [2, 3, 4], 4, np.random.default_rng(1))
    assert sorted(slate.items) == [1, 2, 3, 4]  # type: ignore[type-var]
    assert slate.sources(("ctrl", "new")).count("ctrl") == 1
    short = team_draft(["x"], ["x"], 5, np.random.default_rng(1))
    assert short.items == ["x"] and len(short.teams) == 1


def test_the_first_pick_is_a_fair_coin() -> None:
    rng = np.random.default_rng(2)
    first = [team_draft([1, 2], [3, 4], 2, rng).teams[0] for _ in range(4000)]
    share_a = np.mean(np.array(first) == TEAM_A)
    assert abs(share_a - 0.5) < 4.5 * np.sqrt(0.25 / 4000)


def test_the_batch_is_the_single_merge_row_by_row() -> None:
    rng = np.random.default_rng(3)
    a = np.stack([rng.permutation(12)[:6] for _ in range(200)])
    b = np.stack([rng.permutation(12)[:4] for _ in range(200)])
    k = 9
    items, teams = team_draft_batch(a, b, k, np.random.default_rng(7))
    single = np.random.default_rng(7)
    for row in range(200):
        slate = team_draft(a[row].tolist(), b[row].tolist(), k, single)
        n = len(slate.items)
        assert items[row, :n].tolist() == slate.items
        np.testing.assert_array_equal(teams[row, :n], slate.teams)
        assert np.all(items[row, n:] == -1) and np.all(teams[row, n:] == NO_TEAM)


def test_clicks_are_credited_to_the_team_of_their_position() -> None:
    slate = InterleavedSlate([5, 6, 7, 8], np.array([TEAM_A, TEAM_B, TEAM_B, TEAM_A], np.int8))
    assert slate.credit([True, True, False, True]) == (2, 1)
    ca, cb = credit_batch(
        np.array([[0, 1, 1, 0], [1, 0, -1, -1]]), np.array([[1, 1, 0, 1], [1, 1, 0, 0]])
    )
    np.testing.assert_array_equal(ca, [2, 1])
    np.testing.assert_array_equal(cb, [1, 1])
    with pytest.raises(ValueError, match="`clicks` must have one entry per position"):
        slate.credit([True])


def test_units_are_aggregated_over_their_impressions() -> None:
    # u1: 1-0 then 0-2 → B; u2: 1-1 → tie; u3: 2-0 → A; u4: 0-0 → tie.
    result = analyze_interleaving(
        ["u1", "u1", "u2", "u3", "u4"], [1, 0, 1, 2, 0], [0, 2, 1, 0, 0], variant_a="x"
    )
    assert (result.units, result.wins_a, result.wins_b, result.ties) == (4, 1, 1, 2)
    assert (result.clicks_a, result.clicks_b) == (4, 3)
    assert result.delta == 0.0 and result.winner is None


def test_the_preference_test_matches_scipy_and_statsmodels() -> None:
    rng = np.random.default_rng(4)
    units = rng.integers(0, 300, size=1200)
    ca = rng.poisson(0.6, size=1200)
    cb = rng.poisson(0.45, size=1200)
    result = analyze_interleaving(units, ca, cb, alpha=0.05)
    # Per-unit scores by hand, then the peers.
    ids = np.unique(units)
    score = np.array([np.sign(ca[units == u].sum() - cb[units == u].sum()) for u in ids])
    assert result.units == ids.size
    assert result.delta == pytest.approx(score.mean(), abs=1e-12)
    wins_a, wins_b = int((score > 0).sum()), int((score < 0).sum())
    assert (result.wins_a, result.wins_b) == (wins_a, wins_b)
    assert result.p_value == pytest.approx(
        stats.binomtest(wins_a, wins_a + wins_b).pvalue, abs=1e-12
    )
    assert result.p_value == pytest.approx(sign_test(score)[1], abs=1e-9)
    low, high = DescrStatsW(score).zconfint_mean(alpha=0.05)
    assert (result.ci_low, result.ci_high) == (
        pytest.approx(low, abs=1e-12),
        pytest.approx(high, abs=1e-12),
    )
    assert result.p_value_normal == pytest.approx(ztest(score)[1], abs=1e-12)
    assert result.winner == "A" and result.delta > 0


def test_all_ties_and_all_wins_are_edge_cases_not_errors() -> None:
    tied = analyze_interleaving([1, 2, 3], [0, 1, 0], [0, 1, 0])
    assert tied.p_value == 1.0 and tied.p_value_normal == 1.0 and tied.winner is None
    swept = analyze_interleaving(list(range(12)), [1] * 12, [0] * 12, variant_b="new")
    assert swept.delta == 1.0 and swept.std_error == 0.0 and swept.p_value_normal == 0.0
    assert swept.p_value == pytest.approx(2 * 0.5**12) and swept.winner == "A"


def test_the_result_is_plain_json() -> None:
    result = analyze_interleaving(["a", "b", "c"], [1, 0, 1], [0, 1, 0], variant_b="new")
    d = json.loads(json.dumps(result.to_dict()))
    assert d["variant_b"] == "new" and d["wins_a"] == 2 and "winner" in d


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: analyze_interleaving([], [], []), "`units` must be a non-empty 1-d array"),
        (lambda: analyze_interleaving([1], [1, 2], [0]), "`clicks_a` must have shape (1,)"),
        (lambda: analyze_interleaving([1], [1], [-1]), "`clicks_b` must hold finite click"),
        (
            lambda: analyze_interleaving([1], [1], [0], alpha=1.0),
            "`alpha` must be a float in (0, 1)",
        ),
        (
            lambda: team_draft([1, 1], [2], 2, np.random.default_rng(0)),
            "`ranking_a` must not repeat",
        ),
        (lambda: team_draft([1], [2], 0, np.random.default_rng(0)), "`k` must be a positive int"),
        (
            lambda: team_draft_batch(
                np.array([[1, 2]]), np.array([[3, 3]]), 2, np.random.default_rng(0)
            ),
            "`rankings_b` must not repeat an item",
        ),
        (
            lambda: team_draft_batch(
                np.array([[1, 2]]), np.array([[3], [4]]), 2, np.random.default_rng(0)
            ),
            "must have the same rows",
        ),
        (
            lambda: team_draft_batch(
                np.array([[1, -1]]), np.array([[3]]), 2, np.random.default_rng(0)
            ),
            "`rankings_a` must hold item ids >= 0",
        ),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()  # type: ignore[operator]


class _Coins:
    """Stands in for a generator whose ``random(k)`` is one fixed coin sequence."""

    def __init__(self, pattern: tuple[float, ...]) -> None:
        self.pattern = pattern

    def random(self, n: int) -> np.ndarray:
        return np.asarray(self.pattern[:n])


def test_team_draft_propensities_equal_the_frequencies_over_every_coin_sequence() -> None:
    import itertools

    from recops.experiments.interleaving import team_draft_propensities

    cases = [
        (list("abcdef"), list("bdafce"), 6),
        (list("abcdefgh"), list("abcdefgh"), 5),  # identical rankings
        (list("abc"), list("xyzuvw"), 7),  # A runs out, B fills
        (list("abcde"), list("edcba"), 4),
    ]
    for a, b, k in cases:
        counts: dict[tuple[int, str], float] = {}
        patterns = list(itertools.product([0.25, 0.75], repeat=k))  # coin True = A first
        slates = []
        for pattern in patterns:
            slate = team_draft(a, b, k, _Coins(pattern))  # type: ignore[arg-type]
            slates.append(slate.items)
            for p, item in enumerate(slate.items):
                counts[(p, str(item))] = counts.get((p, str(item)), 0.0) + 1 / len(patterns)
        for items in slates:
            got = team_draft_propensities(a, b, items)
            want = [counts[(p, str(i))] for p, i in enumerate(items)]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
