"""How many users does an experiment need? A/B tests against interleaving, on the world.

On the world generator the click behaviour is known, so two rankers of different true
quality can be compared many times over and each method's verdict checked:

1. **Pool.** Requests of the world's users (:func:`~recops.ope.simulation.sample_requests`:
   random times after the first day, users by activity, the retrieval model's top
   ``n_candidates`` available items). Each ranker orders the candidates; its slate
   is its top ``k``. The exact click probability of every slot,
   ``examination(position) · attractiveness(user, item, t)``, comes from the world.
2. **Units.** A simulated experiment draws ``n`` users with replacement from the
   pool's users; a user brings all its pool requests, and every draw gets fresh clicks.
3. **A/B.** Each unit goes to A or B with probability 1/2 and sees that ranker's
   slates. Two tests at ``alpha``: Welch's t-test on per-user CTR
   (:func:`scipy.stats.ttest_ind`), and the delta method on ``clicks/impressions``,
   as Welch's test on the linearised per-user values ``R + (clicks - R ·
   impressions) / mean(impressions)`` of each arm (Deng, Knoblich & Lu 2018).
4. **Interleaving.** Every unit sees team-draft interleaved slates of both rankers
   (:mod:`recops.experiments.interleaving`); the sign test on per-unit preferences.
5. **Power.** A verdict is correct when it is significant in the direction of the
   truly better ranker (higher expected clicks per impression over the pool). The
   share of correct verdicts over ``replications`` experiments at each ``n`` of a
   doubling grid is the power; the users needed for the target power are
   interpolated on ``log n`` between the grid points around the first crossing.

References
----------
Chapelle, O., Joachims, T., Radlinski, F. and Yue, Y. (2012). Large-scale validation
and analysis of interleaved search evaluation. ACM TOIS 30(1).
Deng, A., Knoblich, U. and Lu, J. (2018). Applying the delta method in metric analytics.
KDD.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from rich.table import Table
from scipy import stats

from recops.data.world.config import WorldConfig
from recops.data.world.truth import World
from recops.experiments.interleaving import (
    analyze_interleaving,
    credit_batch,
    team_draft_batch,
)
from recops.ope.simulation import ScoreFn, noisy_oracle_scores, sample_requests

METHODS = ("interleaving", "ab_welch", "ab_delta")
"""Methods compared: team-draft interleaving, A/B with Welch on per-user CTR, A/B with
the delta method on clicks/impressions."""

USER_GRID = tuple(round(10 * 2 ** (j / 2)) for j in range(19))
"""Users per experiment of the default grid: 10 to 5,120 in steps of √2."""

_LABELS = {
    "interleaving": "team-draft interleaving (sign test)",
    "ab_welch": "A/B, per-user CTR (Welch)",
    "ab_delta": "A/B, clicks/impressions (delta method)",
}


@dataclass(frozen=True)
class ExperimentPool:
    """The pool's requests with both rankers' slates and their exact click probabilities.

    Parameters
    ----------
    offsets:
        ``(U + 1,)``: the requests of pool user ``u`` are rows ``offsets[u]:offsets[u+1]``.
    slates_a, slates_b:
        Each ranker's top ``k`` item indices per request, ``(R, k)``, best first.
    clicks_a, clicks_b:
        Exact click probability of each slot of those slates, ``(R, k)``.
    attraction_a, attraction_b:
        The same items' attractiveness (click probability once examined), ``(R, k)``.
    examination:
        ``P(examined)`` of each position, ``(k,)``.
    """

    offsets: np.ndarray
    slates_a: np.ndarray
    slates_b: np.ndarray
    clicks_a: np.ndarray
    clicks_b: np.ndarray
    attraction_a: np.ndarray
    attraction_b: np.ndarray
    examination: np.ndarray

    @property
    def n_users(self) -> int:
        """Users in the pool."""
        return int(self.offsets.size - 1)

    @property
    def slate_size(self) -> int:
        """``k``."""
        return int(self.slates_a.shape[1])

    def true_ctr(self, ranker: str) -> float:
        """Expected clicks per impression of ranker ``"a"`` or ``"b"`` for a pool user drawn
        uniformly (each user weighted by its requests, as the A/B draws are)."""
        p = {"a": self.clicks_a, "b": self.clicks_b}[ranker]
        lengths = np.diff(self.offsets)
        per_user = np.add.reduceat(p.sum(axis=1), self.offsets[:-1])
        return float(per_user.sum() / (lengths.sum() * self.slate_size))


def build_pool(
    world: World,
    ranker_a: ScoreFn,
    ranker_b: ScoreFn,
    *,
    retrieval: ScoreFn,
    n_requests: int,
    n_candidates: int = 20,
    k: int = 10,
    rng: np.random.Generator,
) -> ExperimentPool:
    """Draw the pool's requests and both rankers' slates (see the module docstring).

    Parameters
    ----------
    world:
        The simulated site (the truth).
    ranker_a, ranker_b:
        Score functions of the two rankers (:data:`~recops.ope.simulation.ScoreFn`).
    retrieval:
        The model whose top ``n_candidates`` available items are each request's candidates.
    n_requests, n_candidates, k:
        Pool size, candidates per request, slate size (``k ≤ n_candidates``).
    rng:
        Source of randomness.

    Returns
    -------
    ExperimentPool
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n_candidates:
        raise ValueError(f"`k` must be an int in 1..n_candidates={n_candidates} (got {k!r})")
    requests = sample_requests(world, retrieval, n_requests, n_candidates, rng)
    order = np.argsort(requests.user, kind="stable")
    user, t, candidates = requests.user[order], requests.t[order], requests.candidates[order]
    positions = np.arange(k)
    exam = world.examination(positions)
    out = []
    for ranker in (ranker_a, ranker_b):
        ranking = np.argsort(-ranker(user, candidates, t), axis=1, kind="stable")[:, :k]
        slates = np.take_along_axis(candidates, ranking, axis=1)
        attraction = world.attractiveness(user[:, None], slates, t[:, None])
        out.append((slates, attraction))
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    return ExperimentPool(
        offsets=np.append(starts, user.size),
        slates_a=out[0][0],
        slates_b=out[1][0],
        clicks_a=out[0][1] * exam,
        clicks_b=out[1][1] * exam,
        attraction_a=out[0][1],
        attraction_b=out[1][1],
        examination=exam,
    )


@dataclass(frozen=True)
class PowerCurve:
    """One method's share of correct verdicts at each number of users.

    Parameters
    ----------
    method:
        One of :data:`METHODS`.
    users:
        Users per experiment (both arms together for A/B), increasing.
    power:
        Share of experiments significant at ``alpha`` in the true direction.
    wrong:
        Share significant in the wrong direction.
    target:
        The power the users needed are read at.
    """

    method: str
    users: tuple[int, ...]
    power: tuple[float, ...]
    wrong: tuple[float, ...]
    target: float

    @property
    def users_needed(self) -> float | None:
        """Users at ``target`` power, interpolated on ``log n`` (None: not reached).

        When the first grid point already reaches it, that point (an upper bound).
        """
        for i, p in enumerate(self.power):
            if p >= self.target:
                if i == 0:
                    return float(self.users[0])
                lo, hi = self.power[i - 1], p
                x0, x1 = math.log(self.users[i - 1]), math.log(self.users[i])
                share = (self.target - lo) / (hi - lo)
                return float(math.exp(x0 + share * (x1 - x0)))
        return None

    def needed_text(self) -> str:
        """:attr:`users_needed` for people: ``~310``, ``≤ 10`` or ``> 5120``."""
        needed = self.users_needed
        if needed is None:
            return f"> {self.users[-1]:,}"
        if self.power[0] >= self.target:
            return f"≤ {self.users[0]:,}"
        return f"~{needed:,.0f}"


@dataclass(frozen=True)
class SampleSizeResult:
    """Power curves of interleaving and of the A/B tests on the same pair of rankers.

    Parameters
    ----------
    curves:
        One :class:`PowerCurve` per method of :data:`METHODS`.
    true_ctr_a, true_ctr_b:
        The rankers' expected clicks per impression over the pool.
    alpha:
        Significance level of every test.
    replications:
        Simulated experiments per grid point and method.
    pool_users, slate_size:
        Users in the pool and ``k``.
    """

    curves: tuple[PowerCurve, ...]
    true_ctr_a: float
    true_ctr_b: float
    alpha: float
    replications: int
    pool_users: int
    slate_size: int

    def curve(self, method: str) -> PowerCurve:
        """The curve of ``method``."""
        for c in self.curves:
            if c.method == method:
                return c
        raise KeyError(f"no curve for {method!r}; methods: {', '.join(METHODS)}")

    @property
    def ratio(self) -> float | None:
        """Users the Welch A/B test needs per user interleaving needs (None: not reached)."""
        ab = self.curve("ab_welch").users_needed
        inter = self.curve("interleaving").users_needed
        return None if ab is None or inter is None else ab / inter

    def table(self) -> Table:
        """Power per number of users (rows) and method (columns); last, the users needed."""
        target = self.curves[0].target
        grid = sorted({n for c in self.curves for n in c.users})
        caption = (
            f"true CTR per impression: A {self.true_ctr_a:.4f}, B {self.true_ctr_b:.4f} "
            f"({(self.true_ctr_a / self.true_ctr_b - 1):+.1%}); {self.replications} "
            f"experiments per cell, α = {self.alpha}, {self.pool_users:,} pool users, "
            f"slates of {self.slate_size}"
        )
        if self.ratio is not None:
            caption += f"; A/B needs {self.ratio:.1f}× the users of interleaving"
        table = Table(
            title=f"Users needed for {target:.0%} power: interleaving vs A/B", caption=caption
        )
        table.add_column("users", justify="right")
        for c in self.curves:
            table.add_column(_LABELS[c.method], justify="right")
        power = [dict(zip(c.users, c.power, strict=True)) for c in self.curves]
        for n in grid:
            table.add_row(f"{n:,}", *[f"{p[n]:.2f}" if n in p else "" for p in power])
        table.add_section()
        table.add_row(f"for {target:.0%}", *[c.needed_text() for c in self.curves], style="bold")
        return table

    def to_dict(self) -> dict[str, object]:
        """Every field, with each curve's users needed, as plain Python values."""
        out = asdict(self)
        for c, d in zip(self.curves, out["curves"], strict=True):
            d["users_needed"] = c.users_needed
        out["ratio"] = self.ratio
        return out


def power_curves(
    pool: ExperimentPool,
    *,
    users: Sequence[int] = USER_GRID,
    replications: int = 200,
    alpha: float = 0.05,
    power: float = 0.8,
    saturate: float = 0.97,
    rng: np.random.Generator,
    progress: Callable[[str, int], None] | None = None,
) -> SampleSizeResult:
    """Simulate experiments at each number of users and measure each method's power.

    Parameters
    ----------
    pool:
        Requests and slates (:func:`build_pool`).
    users:
        Increasing users per experiment (default :data:`USER_GRID`).
    replications:
        Experiments per grid point and method.
    alpha, power:
        Significance level and target power.
    saturate:
        A method stops at the first grid point past the target whose power reaches
        this (larger experiments add nothing to the answer).
    rng:
        Source of randomness.
    progress:
        Called with ``(method, n)`` before each grid point.

    Returns
    -------
    SampleSizeResult
        When the rankers are equally good (an A/A pool) the "true" direction is B's, so
        ``power + wrong`` is each method's false-positive rate.
    """
    grid = [int(n) for n in users]
    if not grid or any(n < 2 for n in grid) or grid != sorted(set(grid)):
        raise ValueError(f"`users` must be increasing ints >= 2 (got {list(users)!r})")
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise ValueError(f"`replications` must be a positive int (got {replications!r})")
    for name, value in (("alpha", alpha), ("power", power), ("saturate", saturate)):
        if not 0 < value < 1:
            raise ValueError(f"`{name}` must be in (0, 1) (got {value!r})")
    better = 1.0 if pool.true_ctr("a") > pool.true_ctr("b") else -1.0
    curves = []
    for method in METHODS:
        done, powers, wrongs = [], [], []
        for n in grid:
            if progress is not None:
                progress(method, n)
            effects = _experiments(method, pool, n, replications, alpha, rng)
            powers.append(float(np.mean(np.sign(effects) == better)))
            wrongs.append(float(np.mean(np.sign(effects) == -better)))
            done.append(n)
            if powers[-1] >= max(power, saturate):
                break
        curves.append(PowerCurve(method, tuple(done), tuple(powers), tuple(wrongs), power))
    return SampleSizeResult(
        curves=tuple(curves),
        true_ctr_a=pool.true_ctr("a"),
        true_ctr_b=pool.true_ctr("b"),
        alpha=alpha,
        replications=replications,
        pool_users=pool.n_users,
        slate_size=pool.slate_size,
    )


def _experiments(
    method: str,
    pool: ExperimentPool,
    n: int,
    replications: int,
    alpha: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per experiment: +1 / -1 when significant for A / B, 0 when not, ``(replications,)``."""
    units = rng.integers(0, pool.n_users, size=(replications, n))
    rows, owner = _requests_of(pool.offsets, units.ravel())
    if method == "interleaving":
        return _interleaving(pool, rows, owner, replications, n, alpha, rng)
    to_a = rng.random(units.shape) < 0.5
    on_a = to_a.ravel()[owner]
    p = np.where(on_a[:, None], pool.clicks_a[rows], pool.clicks_b[rows])
    clicks = np.bincount(owner, (rng.random(p.shape) < p).sum(axis=1), minlength=units.size)
    shown = np.bincount(owner, minlength=units.size) * float(pool.slate_size)
    clicks, shown = clicks.reshape(units.shape), shown.reshape(units.shape)
    verdicts = np.zeros(replications)
    for r in range(replications):
        a, b = to_a[r], ~to_a[r]
        if a.sum() < 2 or b.sum() < 2:
            continue  # an arm too small to test: no verdict
        if method == "ab_welch":
            xa, xb = clicks[r, a] / shown[r, a], clicks[r, b] / shown[r, b]
        else:
            xa = _linearised(clicks[r, a], shown[r, a])
            xb = _linearised(clicks[r, b], shown[r, b])
        with warnings.catch_warnings():
            # Tiny arms at the smallest grid points can hold identical values.
            warnings.simplefilter("ignore", RuntimeWarning)
            test = stats.ttest_ind(xa, xb, equal_var=False)
        if test.pvalue < alpha:
            verdicts[r] = np.sign(test.statistic)
    return verdicts


def _linearised(clicks: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """Per-user values whose mean is the arm's ratio and whose variance its delta-method one."""
    ratio = clicks.sum() / shown.sum()
    return ratio + (clicks - ratio * shown) / shown.mean()


def _interleaving(
    pool: ExperimentPool,
    rows: np.ndarray,
    owner: np.ndarray,
    replications: int,
    n: int,
    alpha: float,
    rng: np.random.Generator,
) -> np.ndarray:
    k = pool.slate_size
    items, teams = team_draft_batch(pool.slates_a[rows], pool.slates_b[rows], k, rng)
    # Each shown item's attractiveness, looked up in the slate it came from.
    union = np.concatenate([pool.slates_a[rows], pool.slates_b[rows]], axis=1)
    attraction = np.concatenate([pool.attraction_a[rows], pool.attraction_b[rows]], axis=1)
    source = np.argmax(items[:, :, None] == union[:, None, :], axis=2)
    p = np.take_along_axis(attraction, source, axis=1) * pool.examination
    clicks = (rng.random(p.shape) < p) & (items >= 0)
    credit_a, credit_b = credit_batch(teams, clicks)
    experiment = owner // n
    verdicts = np.zeros(replications)
    bounds = np.searchsorted(experiment, np.arange(replications + 1))
    for r in range(replications):
        part = slice(bounds[r], bounds[r + 1])
        result = analyze_interleaving(owner[part], credit_a[part], credit_b[part], alpha=alpha)
        if result.p_value < alpha:
            verdicts[r] = np.sign(result.delta)
    return verdicts


def _requests_of(offsets: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool rows of every drawn unit's requests and the index of the draw each belongs to."""
    lengths = offsets[units + 1] - offsets[units]
    owner = np.repeat(np.arange(units.size), lengths)
    first = np.repeat(offsets[units] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return first + np.arange(owner.size), owner


def sample_size_study(
    *,
    quick: bool = True,
    seed: int = 0,
    progress: Callable[[str, int], None] | None = None,
) -> SampleSizeResult:
    """The study the validity benchmark prints: a better and a worse noisy oracle.

    Ranker A is the world's true attraction logit plus noise of std 1.0, ranker B
    plus noise of std 1.5 (:func:`~recops.ope.simulation.noisy_oracle_scores`), both
    re-ranking the top 20 of a retrieval model (noise 2.0) into slates of 10. ``quick``
    (20–30 s on one core of the shared 2-core machine) uses a world of 1,500 users and
    a pool of 10,000 requests, with 300 experiments per cell; the full study (about
    2 minutes) 5,000 users, 40,000 requests and 1,000 experiments per cell.
    """
    config = (
        WorldConfig(n_users=1_500, n_items=600, days=14, seed=seed)
        if quick
        else WorldConfig(n_users=5_000, n_items=1_500, days=21, seed=seed)
    )
    world = World.from_config(config)
    rng = np.random.default_rng(seed)
    pool = build_pool(
        world,
        noisy_oracle_scores(world, noise=1.0, seed=seed + 2),
        noisy_oracle_scores(world, noise=1.5, seed=seed + 3),
        retrieval=noisy_oracle_scores(world, noise=2.0, seed=seed + 1),
        n_requests=10_000 if quick else 40_000,
        rng=rng,
    )
    return power_curves(pool, replications=300 if quick else 1_000, rng=rng, progress=progress)
