"""Impression ranking, the MIND protocol: rank what each user was actually shown.

A news feed logs, per impression, the items shown and the ones clicked. The MIND
benchmark (Wu et al., "MIND: A Large-scale Dataset for News Recommendation", ACL
2020) scores a model by ranking each impression's candidates for its user and
reports the mean over impressions of AUC, MRR, nDCG@5 and nDCG@10, as its
evaluation script defines them:

* AUC: the share of (clicked, not clicked) pairs ranked in that order (ties count
  half); undefined, and left out of the mean, when an impression has only clicks;
* MRR: :math:`\\sum_i y_i / r_i \\,/\\, \\sum_i y_i` over the candidates in ranked order;
* nDCG@k: :math:`\\sum_{r \\le k} (2^{y_r} - 1) / \\log_2(r + 1)` over its ideal.

Unlike top-k retrieval over the catalog (:mod:`recops.evaluation.protocol`), every
candidate here was shown: a click and a non-click differ by appeal, not exposure,
which is what an exposure correction (the two-tower's ``exposure_debias``) should
improve and a popularity ranking cannot fake.

The split is temporal: the models train on every event before the cutoff (clicks,
and the impressions for exposure counts); each later impression is a query whose
history is the user's clicks before it (what a served model's online state holds).
A candidate a model does not know scores below every known one; ties are broken
at random (seeded), so a model that knows nothing scores the chance level.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from recops.data.schema import EVENT, IMPRESSION, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from recops.evaluation.bootstrap import Interval, bootstrap_ci
from recops.models.base import Queries, Recommender

#: The metrics of MIND's evaluation script, in its order.
METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")

#: The column naming each event's impression (as :func:`recops.data.loaders.mind`
#: and the server's exposure export write it).
IMPRESSION_ID = "impression_id"


@dataclass(frozen=True)
class ImpressionSplit:
    """Events before ``cutoff`` to train on, and the impressions from it on to rank.

    Parameters
    ----------
    train:
        Every event strictly before ``cutoff`` (clicks and impressions).
    test:
        The ``impression`` rows at or after ``cutoff``: one per shown candidate, its
        ``value`` the click label.
    clicks:
        Every click of the data (either side of the cutoff), from which each test
        impression's history is taken (those strictly before it).
    cutoff:
        Unix seconds.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    clicks: pd.DataFrame
    cutoff: int

    @property
    def train_clicks(self) -> pd.DataFrame:
        """The training events a click model learns from."""
        return self.train[self.train[EVENT] != IMPRESSION]

    @property
    def train_impressions(self) -> pd.DataFrame:
        """The training period's impressions (what the logging policy showed)."""
        return self.train[self.train[EVENT] == IMPRESSION]


def impression_split(events: pd.DataFrame, quantile: float = 0.8) -> ImpressionSplit:
    """Split at the ``quantile`` of the impressions' times (the last ones are ranked).

    ``events`` hold ``impression`` rows with an ``impression_id`` column and a 0/1
    ``value`` (the click label), and click rows; see :mod:`recops.data.loaders.mind`.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"`quantile` must be in (0, 1) (got {quantile!r})")
    missing = {USER_ID, ITEM_ID, EVENT, VALUE, TIMESTAMP, IMPRESSION_ID} - set(events.columns)
    if missing:
        raise ValueError(f"impression_split: `events` lacks the columns {sorted(missing)}")
    shown = events[events[EVENT] == IMPRESSION]
    if shown.empty:
        raise ValueError("impression_split: `events` has no `impression` rows to rank")
    times = shown.groupby(IMPRESSION_ID, sort=False)[TIMESTAMP].min()
    cutoff = int(np.quantile(times.to_numpy(), quantile, method="higher"))
    test = shown[shown[TIMESTAMP] >= cutoff]
    if test.empty or (events[TIMESTAMP] < cutoff).sum() == 0:
        raise ValueError(f"impression_split: quantile {quantile} leaves one side empty")
    return ImpressionSplit(
        train=events[events[TIMESTAMP] < cutoff].reset_index(drop=True),
        test=test.reset_index(drop=True),
        clicks=events[events[EVENT] != IMPRESSION].reset_index(drop=True),
        cutoff=cutoff,
    )


def impression_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC, MRR, nDCG@5 and nDCG@10 of one impression (MIND's definitions).

    ``labels`` are 0/1 click labels, ``scores`` the model's scores of the same
    candidates (``-inf`` allowed). AUC counts a tie as half a pair; MRR and nDCG
    rank tied candidates in the order given (shuffle them first to break ties at
    random). AUC is NaN when every candidate was clicked; every metric is NaN when none was.
    """
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1 or len(labels) == 0:
        raise ValueError(
            f"`labels` and `scores` must be equal-length 1-d arrays (got {labels.shape} "
            f"and {scores.shape})"
        )
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    if n_pos == 0:  # nothing clicked: no metric of MIND's is defined
        return dict.fromkeys(METRICS, float("nan"))
    if n_pos > 0 and n_neg > 0:
        ranks = rankdata(scores)  # average ranks: a tie counts half
        auc = (ranks[labels > 0].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    else:
        auc = float("nan")
    ranked = labels[np.argsort(-scores, kind="stable")]
    out = {"auc": float(auc), "mrr": float((ranked / np.arange(1, len(ranked) + 1)).sum() / n_pos)}
    ideal = np.sort(labels)[::-1]
    for k in (5, 10):
        discounts = np.log2(np.arange(2, min(k, len(labels)) + 2))
        gains = 2.0 ** ranked[:k] - 1
        best = ((2.0 ** ideal[:k] - 1) / discounts).sum()
        out[f"ndcg@{k}"] = float((gains / discounts).sum() / best)
    return out


@dataclass(frozen=True)
class ImpressionResult:
    """Per-impression metrics of one model, with bootstrap summaries.

    ``per_impression`` maps each of :data:`METRICS` to one value per ranked
    impression (``impression_ids`` order; AUC NaN where undefined);
    ``known_share`` is the share of candidates the model could score (known to it
    and out at the impression's time).
    """

    model: str
    impression_ids: np.ndarray
    per_impression: dict[str, np.ndarray]
    known_share: float
    n_boot: int = 1000
    level: float = 0.95
    seed: int = 0
    _intervals: dict[str, Interval] = field(default_factory=dict, repr=False, compare=False)

    def interval(self, metric: str) -> Interval:
        """The mean of ``metric`` over impressions, with its bootstrap interval."""
        if metric not in self._intervals:
            values = self.per_impression[metric]
            self._intervals[metric] = bootstrap_ci(
                values[~np.isnan(values)], n_boot=self.n_boot, level=self.level, seed=self.seed
            )
        return self._intervals[metric]

    def summary(self) -> dict[str, float]:
        """``metric`` → mean over impressions (AUC over those where it is defined)."""
        return {m: self.interval(m).mean for m in METRICS}

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "impressions": len(self.impression_ids),
            "known_share": self.known_share,
            **{m: self.interval(m).to_dict() for m in METRICS},
        }


def evaluate_impressions(
    model: Recommender,
    split: ImpressionSplit,
    *,
    name: str | None = None,
    seed: int = 0,
    batch_size: int = 512,
    n_boot: int = 1000,
    candidates: Collection[str] | None = None,
) -> ImpressionResult:
    """Rank every test impression's candidates with the fitted ``model``.

    ``candidates`` keeps only the shown items among them (the same set for every
    model compared, e.g. the items clicked in training: on a sample of MIND most
    shown articles are new to every model, which then all rank at chance); an
    impression left without a click is not ranked.
    """
    test = split.test
    if candidates is not None:
        test = test[test[ITEM_ID].isin(set(candidates))]
        clicked = test.groupby(IMPRESSION_ID)[VALUE].transform("max") > 0
        test = test[clicked]
    groups = list(test.groupby(IMPRESSION_ID, sort=True))
    ids = np.array([key for key, _ in groups], dtype=object)
    queries = _queries(split, [g for _, g in groups])
    column = {item: j for j, item in enumerate(model.item_ids_)}
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    known = shown = 0
    for start in range(0, len(groups), batch_size):
        stop = start + batch_size
        scores = np.asarray(model.score(queries.rows(start, stop)), dtype=np.float64)
        for row, (_, group) in zip(scores, groups[start:stop], strict=True):
            cols = np.array([column.get(i, -1) for i in group[ITEM_ID]], dtype=np.int64)
            own = np.where(cols >= 0, row[np.maximum(cols, 0)], -np.inf)
            own[~np.isfinite(own)] = -np.inf  # unknown, or not out yet: below every known
            known += int(np.isfinite(own).sum())
            shown += len(cols)
            # A random order under a stable sort breaks ties at random.
            order = rng.permutation(len(own))
            labels = group[VALUE].to_numpy(dtype=np.float64)[order]
            scored = impression_metrics(labels, own[order])
            for m in METRICS:
                values[m].append(scored[m])
    return ImpressionResult(
        model=name or type(model).__name__,
        impression_ids=ids,
        per_impression={m: np.array(v) for m, v in values.items()},
        known_share=known / max(shown, 1),
        n_boot=n_boot,
        seed=seed,
    )


def _queries(split: ImpressionSplit, groups: list[pd.DataFrame]) -> Queries:
    """One query per impression: its user's clicks strictly before it, ``now`` its time."""
    clicks = split.clicks.sort_values(TIMESTAMP, kind="stable")
    by_user = {
        u: (g[ITEM_ID].to_numpy(dtype=object), g[TIMESTAMP].to_numpy(dtype=np.int64))
        for u, g in clicks.groupby(USER_ID, sort=False)
    }
    empty = (np.array([], dtype=object), np.array([], dtype=np.int64))
    users, histories, times, now = [], [], [], []
    for group in groups:
        user, at = str(group[USER_ID].iloc[0]), int(group[TIMESTAMP].min())
        items, stamps = by_user.get(user, empty)
        before = int(np.searchsorted(stamps, at, side="left"))
        users.append(user)
        histories.append(items[:before])
        times.append(stamps[:before])
        now.append(at)
    return Queries(users, histories, times, np.array(now, dtype=np.int64))
