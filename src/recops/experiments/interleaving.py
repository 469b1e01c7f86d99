"""Team-draft interleaving: two rankers in one slate, and which one users prefer.

Merging (Radlinski, Kurup & Joachims 2008)
    Two teams, A and B, pick in rounds. Whichever team has contributed fewer items
    picks next; when they are level a fair coin decides. A team picks its
    highest-ranked item not yet in the slate (if it has none left the other team
    picks), until the slate holds ``k`` items or both rankings are spent. Each
    position records its team, so a click is credited to the ranker that put the
    item there.

Analysis (Chapelle, Joachims, Radlinski & Yue 2012)
    Per impression, each team's credit is its number of clicked positions. Per unit
    (user), the credits of all its impressions are summed; the unit prefers A when
    A's credit is larger, B when smaller, and is a tie otherwise. With the per-unit
    score ``s_u = sign(credit_A - credit_B) ∈ {-1, 0, 1}`` over ``n`` units,

    ``Δ = (wins_A - wins_B) / n = mean(s_u)``,

    with the normal 95% interval ``Δ ± z · sd(s_u) / √n`` (sample sd) and two p-values:
    the exact two-sided sign test of ``wins_A`` among the ``wins_A + wins_B`` untied
    units against 1/2 (:func:`scipy.stats.binomtest`, the verdict), and the normal
    test ``2 Φ(-|Δ| / se)`` that goes with the interval. Units, not impressions, are
    the independent observations.

References
----------
Radlinski, F., Kurup, M. and Joachims, T. (2008). How does clickthrough data reflect
retrieval quality? CIKM.
Chapelle, O., Joachims, T., Radlinski, F. and Yue, Y. (2012). Large-scale validation
and analysis of interleaved search evaluation. ACM TOIS 30(1).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

TEAM_A, TEAM_B, NO_TEAM = 0, 1, -1
"""Team codes of a position: ranker A, ranker B, or an empty position (batches only)."""


@dataclass(frozen=True)
class InterleavedSlate:
    """One interleaved slate.

    Parameters
    ----------
    items:
        The shown items in position order (at most ``k``; fewer when the two rankings
        together hold fewer distinct items).
    teams:
        ``TEAM_A`` or ``TEAM_B`` per position, int8.
    """

    items: list[Hashable]
    teams: np.ndarray

    def sources(self, names: tuple[str, str]) -> list[str]:
        """The contributing variant's name per position (``names`` = (A's, B's))."""
        return [names[t] for t in self.teams.tolist()]

    def credit(self, clicks: object) -> tuple[int, int]:
        """Clicked positions credited to A and to B (``clicks``: one bool per position)."""
        c = np.asarray(clicks, dtype=bool)
        if c.shape != self.teams.shape:
            raise ValueError(
                f"`clicks` must have one entry per position, shape {self.teams.shape} "
                f"(got {c.shape})"
            )
        return int(np.sum(c & (self.teams == TEAM_A))), int(np.sum(c & (self.teams == TEAM_B)))


def team_draft(
    ranking_a: Sequence[Hashable],
    ranking_b: Sequence[Hashable],
    k: int,
    rng: np.random.Generator,
) -> InterleavedSlate:
    """Merge two rankings into one slate of ``k`` by team draft (see the module docstring).

    Parameters
    ----------
    ranking_a, ranking_b:
        Each ranker's items, best first, without repeats.
    k:
        Slate size.
    rng:
        Source of the coin flips: ``rng.random(k) < 0.5`` (A picks first on a tie),
        one per position, the same draws as one row of :func:`team_draft_batch`.

    Returns
    -------
    InterleavedSlate
    """
    _check_k(k)
    coins = rng.random(k) < 0.5
    rankings = (list(ranking_a), list(ranking_b))
    for name, ranking in zip(("ranking_a", "ranking_b"), rankings, strict=True):
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"`{name}` must not repeat an item")
    shown: set[Hashable] = set()
    items: list[Hashable] = []
    teams: list[int] = []
    next_index = [0, 0]
    size = [0, 0]
    for position in range(k):
        first = TEAM_A if size[0] < size[1] or (size[0] == size[1] and coins[position]) else TEAM_B
        for team in (first, 1 - first):
            ranking = rankings[team]
            while next_index[team] < len(ranking) and ranking[next_index[team]] in shown:
                next_index[team] += 1
            if next_index[team] < len(ranking):
                item = ranking[next_index[team]]
                shown.add(item)
                items.append(item)
                teams.append(team)
                size[team] += 1
                break
        else:
            break  # both rankings are spent
    return InterleavedSlate(items, np.array(teams, dtype=np.int8))


def team_draft_propensities(
    ranking_a: Sequence[Hashable], ranking_b: Sequence[Hashable], slate: Sequence[Hashable]
) -> list[float]:
    """``P(slate[p] shown at position p)`` under :func:`team_draft`, exactly.

    Only the coins matter, so the merge is a Markov chain on ``(i_a, i_b, lead)``:
    each team's pointer into its ranking and who has contributed more. Every item
    either pointer has passed is shown (picked by its team, or skipped because the
    other team showed it), so the pointers determine the shown set, and the chain
    has at most ``(len_a + 1)(len_b + 1)`` states per position. Propagating the
    state probabilities gives every position's item distribution in
    ``O(k · len_a · len_b)`` steps, without enumerating the ``2^⌈k/2⌉`` coin
    sequences.

    Parameters
    ----------
    ranking_a, ranking_b:
        The rankings that were merged, best first, without repeats.
    slate:
        The merged slate (:attr:`InterleavedSlate.items`).
    """
    a, b = list(ranking_a), list(ranking_b)
    states: dict[tuple[int, int, int], float] = {(0, 0, 0): 1.0}
    out: list[float] = []
    for wanted in slate:
        here = 0.0
        following: dict[tuple[int, int, int], float] = {}
        for (ia, ib, lead), prob in states.items():
            shown = set(a[:ia]) | set(b[:ib])
            choices: tuple[tuple[int, float], ...]
            if lead < 0:
                choices = ((TEAM_A, prob),)
            elif lead > 0:
                choices = ((TEAM_B, prob),)
            else:
                choices = ((TEAM_A, prob / 2), (TEAM_B, prob / 2))
            for first, p in choices:
                picked = _pick(a, b, ia, ib, shown, first)
                if picked is None:
                    continue
                item, ia2, ib2, team = picked
                if item == wanted:
                    here += p
                key = (ia2, ib2, lead + (1 if team == TEAM_A else -1))
                following[key] = following.get(key, 0.0) + p
        out.append(here)
        states = following
    return out


def _pick(
    a: list[Hashable], b: list[Hashable], ia: int, ib: int, shown: set[Hashable], first: int
) -> tuple[Hashable, int, int, int] | None:
    """The item team ``first`` (or, if spent, the other) picks, and the new pointers."""
    for team in (first, 1 - first):
        ranking, index = (a, ia) if team == TEAM_A else (b, ib)
        while index < len(ranking) and ranking[index] in shown:
            index += 1
        if index < len(ranking):
            item = ranking[index]
            new_a, new_b = (index + 1, ib) if team == TEAM_A else (ia, index + 1)
            return item, new_a, new_b, team
    return None


def team_draft_batch(
    rankings_a: np.ndarray, rankings_b: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`team_draft` of many requests at once, for simulations.

    Parameters
    ----------
    rankings_a, rankings_b:
        Integer item ids, ``(R, L_a)`` and ``(R, L_b)`` with ``L ≥ 1``, best first, no
        repeats within a row; ids ``< 0`` are not allowed (``-1`` marks empty positions
        in the result).
    k:
        Slate size.
    rng:
        Coin flips ``rng.random((R, k)) < 0.5``: row ``r`` gets the slate that
        :func:`team_draft` gives with the same draws.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Items ``(R, k)`` (``-1`` where a row ran out) and teams ``(R, k)`` int8.
    """
    _check_k(k)
    a, b = _check_rankings(rankings_a, rankings_b)
    n_rows = a.shape[0]
    coins = np.asarray(rng.random((n_rows, k)) < 0.5)
    rankings, used = (a, b), [np.zeros(a.shape, dtype=bool), np.zeros(b.shape, dtype=bool)]
    items = np.full((n_rows, k), -1, dtype=np.int64)
    teams = np.full((n_rows, k), NO_TEAM, dtype=np.int8)
    size = np.zeros((2, n_rows), dtype=np.int64)
    rows = np.arange(n_rows)
    for position in range(k):
        first = np.where(
            (size[0] < size[1]) | ((size[0] == size[1]) & coins[:, position]), TEAM_A, TEAM_B
        )
        # Each team's best item not yet shown (argmin: the first False), if any is left.
        left_a, left_b = (np.logical_not(u.all(axis=1)) for u in used)
        team = np.where(left_a & left_b, first, np.where(left_a, TEAM_A, TEAM_B))
        picked = np.asarray(left_a | left_b)
        chosen = np.where(
            team == TEAM_A, a[rows, np.argmin(used[0], axis=1)], b[rows, np.argmin(used[1], axis=1)]
        )
        items[picked, position] = chosen[picked]
        teams[picked, position] = team[picked]
        size[0] += picked & (team == TEAM_A)
        size[1] += picked & (team == TEAM_B)
        for ranking, u in zip(rankings, used, strict=True):
            u |= picked[:, None] & (ranking == chosen[:, None])
    return items, teams


def credit_batch(teams: np.ndarray, clicks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clicked positions credited to A and to B per impression, each ``(R,)``."""
    t = np.asarray(teams)
    c = np.asarray(clicks, dtype=bool)
    if c.shape != t.shape:
        raise ValueError(f"`clicks` must have the shape of `teams` {t.shape} (got {c.shape})")
    return (c & (t == TEAM_A)).sum(axis=1), (c & (t == TEAM_B)).sum(axis=1)


@dataclass(frozen=True)
class InterleavingResult:
    """Which ranker the units preferred, with a 95% interval and p-values.

    Parameters
    ----------
    variant_a, variant_b:
        Names of the two rankers.
    units:
        Units (users) with at least one impression.
    wins_a, wins_b, ties:
        Units whose summed credit favoured A, favoured B, or neither.
    clicks_a, clicks_b:
        Clicks credited to each team over all impressions.
    delta:
        ``(wins_a - wins_b) / units``, the mean per-unit score; > 0 favours A.
    std_error, ci_low, ci_high:
        Its standard error and normal interval at ``1 - alpha``.
    p_value:
        Exact two-sided sign test on the untied units (1.0 when all are tied).
    p_value_normal:
        Two-sided normal test of ``delta = 0``, matching the interval.
    alpha:
        Significance level of the interval and of :attr:`winner`.
    """

    variant_a: str
    variant_b: str
    units: int
    wins_a: int
    wins_b: int
    ties: int
    clicks_a: int
    clicks_b: int
    delta: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    p_value_normal: float
    alpha: float

    @property
    def winner(self) -> str | None:
        """The preferred variant when the sign test rejects at ``alpha``, else None."""
        if self.p_value >= self.alpha or self.wins_a == self.wins_b:
            return None
        return self.variant_a if self.wins_a > self.wins_b else self.variant_b

    def to_dict(self) -> dict[str, Any]:
        """Every field, plus ``winner``, as plain Python values."""
        return asdict(self) | {"winner": self.winner}


def analyze_interleaving(
    units: object,
    clicks_a: object,
    clicks_b: object,
    *,
    variant_a: str = "A",
    variant_b: str = "B",
    alpha: float = 0.05,
) -> InterleavingResult:
    """Aggregate credited clicks per unit and test the preference (module docstring).

    Parameters
    ----------
    units:
        The unit of each impression, shape ``(R,)`` (any hashable ids).
    clicks_a, clicks_b:
        Clicks credited to A and to B in each impression, shape ``(R,)``, ``≥ 0``.
    variant_a, variant_b:
        Names reported in the result.
    alpha:
        Significance level in (0, 1).

    Returns
    -------
    InterleavingResult
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be a float in (0, 1) (got {alpha!r})")
    unit = np.asarray(units)
    if unit.ndim != 1 or unit.shape[0] == 0:
        raise ValueError(f"`units` must be a non-empty 1-d array (got shape {unit.shape})")
    ca = _credits("clicks_a", clicks_a, unit.shape[0])
    cb = _credits("clicks_b", clicks_b, unit.shape[0])
    _, index = np.unique(unit, return_inverse=True)
    diff = np.bincount(index, ca - cb)
    score = np.sign(diff)
    n = score.shape[0]
    wins_a, wins_b = int(np.sum(score > 0)), int(np.sum(score < 0))
    delta = float(score.mean())
    se = float(score.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    z = float(stats.norm.ppf(1 - alpha / 2))
    # When every unit scored the same there is no spread to test against.
    flat = 1.0 if delta == 0 else 0.0
    p_normal = float(2 * stats.norm.sf(abs(delta) / se)) if se > 0 else flat
    decided = wins_a + wins_b
    p_sign = float(stats.binomtest(wins_a, decided, 0.5).pvalue) if decided else 1.0
    return InterleavingResult(
        variant_a=variant_a,
        variant_b=variant_b,
        units=n,
        wins_a=wins_a,
        wins_b=wins_b,
        ties=n - decided,
        clicks_a=int(ca.sum()),
        clicks_b=int(cb.sum()),
        delta=delta,
        std_error=se,
        ci_low=delta - z * se,
        ci_high=delta + z * se,
        p_value=p_sign,
        p_value_normal=p_normal,
        alpha=float(alpha),
    )


def _check_k(k: object) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"`k` must be a positive int (got {k!r})")


def _check_rankings(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, values in (("rankings_a", a), ("rankings_b", b)):
        arr = np.asarray(values)
        if arr.ndim != 2 or arr.shape[1] == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"`{name}` must be a 2-d integer array (R, L) with L >= 1 (got shape "
                f"{arr.shape}, dtype {arr.dtype})"
            )
        if arr.size and arr.min() < 0:
            raise ValueError(f"`{name}` must hold item ids >= 0 (-1 marks empty positions)")
        ordered = np.sort(arr, axis=1)
        if np.any(ordered[:, 1:] == ordered[:, :-1]):
            raise ValueError(f"`{name}` must not repeat an item within a row")
        out.append(arr.astype(np.int64, copy=False))
    if out[0].shape[0] != out[1].shape[0]:
        raise ValueError(
            f"`rankings_a` and `rankings_b` must have the same rows "
            f"(got {out[0].shape[0]} and {out[1].shape[0]})"
        )
    return out[0], out[1]


def _credits(name: str, values: object, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"`{name}` must have shape ({n},) like `units` (got {arr.shape})")
    if not np.all(np.isfinite(arr) & (arr >= 0)):
        raise ValueError(f"`{name}` must hold finite click counts >= 0")
    return arr
