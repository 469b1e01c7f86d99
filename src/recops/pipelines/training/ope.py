"""Steps ``exposures`` and ``off_policy``: the new model judged on what the server served.

``exposures`` reads the last ``max_requests`` served slates of the event log with the
clicks that answered them (:func:`recops.experiments.logs.shown_items`). ``off_policy``
then estimates the click-through rate per shown item of the new model re-ranking each
logged request's candidates greedily (``recops.ope.rescore.score_candidates``: its
scores as of each request, from the user's events before it), by IPS, SNIPS, DM and
the DR family (``recops.ope.target.batch_from_ranking_policy`` and
``recops.ope.report.evaluate_policy``), beside the logged CTR of each model version
that served. Requests with a candidate count other than the most common one are left
out (the estimators need one slate shape); without exploration in the log
(candidates = shown items, propensity 1), overlap is poor and the report says so.

The estimates describe the new model choosing *among the logged candidates*. So the
step also measures their ``support``: the mean share of the new model's own top-k
(the whole catalog, as it would serve) that the logged candidates hold
(``recops.ope.rescore.candidate_support``). A log of a greedy champion holds only
what it showed; a model that would show other items gets a low support, and the
gate's OPE rule does not take the estimates as evidence about it.
"""

from __future__ import annotations

import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recops.data.schema import EVENT, ITEM_ID, TIMESTAMP, USER_ID, Dataset
from recops.models.two_tower import TwoTower
from recops.pipelines.artifacts import Metrics
from recops.pipelines.component import component
from recops.pipelines.training.config import OPEConfig

_PAGE = 50_000


@dataclass(frozen=True)
class ExposureData:
    """Shown items with rewards (exposure schema) and the clicks that answered them.

    Parameters
    ----------
    shown:
        One row per shown item (:func:`recops.experiments.logs.shown_items`), with a
        ``candidates`` list per row.
    clicks:
        ``user_id, item_id, timestamp`` of the answering clicks (for histories).
    """

    shown: pd.DataFrame
    clicks: pd.DataFrame


def exposure_fingerprint(event_log: str, max_requests: int) -> str:
    """The number of logged exposures and the last event id (new traffic: a cache miss)."""
    from recops.serving.backends import event_log_at

    try:
        log = event_log_at(event_log)
    except FileNotFoundError:
        return "absent"
    try:
        return f"exposures:{log.exposure_count()}:events:{log.last_id()}"
    finally:
        log.close()


@component(fingerprint=exposure_fingerprint, code_deps=("recops.experiments.logs",))
def exposures(event_log: str, max_requests: int) -> ExposureData | None:
    """The latest ``max_requests`` served slates with their clicks; None when none is logged."""
    from recops.experiments.logs import EXPOSURE_COLUMNS, shown_items
    from recops.serving.backends import event_log_at

    try:
        log = event_log_at(event_log)
    except FileNotFoundError:
        return None
    try:
        kept: deque[Any] = deque(maxlen=max_requests)
        after = 0
        while page := log.read_exposures(after, _PAGE):
            after = page[-1][0]
            kept.extend(x for _, x in page)
        wanted = {x.request_id for x in kept}
        answers: list[Any] = []
        after = 0
        while events := log.read_responses(after, _PAGE):
            after = events[-1][0]
            answers.extend(e for _, e in events if e.request_id in wanted)
    finally:
        log.close()
    if not kept:
        return None
    table = pd.DataFrame([{c: getattr(x, c) for c in EXPOSURE_COLUMNS} for x in kept])
    responses = pd.DataFrame(
        [(e.request_id, e.user_id, e.item_id, e.event, e.timestamp) for e in answers],
        columns=["request_id", USER_ID, ITEM_ID, EVENT, TIMESTAMP],
    )
    shown = shown_items(table, responses)
    if "candidates" not in shown.columns:
        # A log without exploration: each request chose from what it showed.
        slates = shown.groupby("request_id", sort=False)[ITEM_ID].agg(list)
        shown["candidates"] = shown["request_id"].map(slates)
    clicks = responses[responses[EVENT] == "click"][[USER_ID, ITEM_ID, TIMESTAMP]]
    return ExposureData(shown.drop(columns=["candidate_scores"], errors="ignore"), clicks)


class Estimate(Metrics):
    """One estimator's value of the new model's CTR per shown item."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    ess: float


class OffPolicyEvaluation(Metrics):
    """OPE of the new model on recent exposures, beside what the logging versions achieved."""

    evaluated: bool
    reason: str
    requests: int
    rows: int
    logged_ctr: float | None
    logged_by_version: dict[str, float]
    estimates: tuple[Estimate, ...]
    recommended: str | None
    overlap: str | None
    support: float | None = None


def _one_shape(shown: pd.DataFrame) -> pd.DataFrame:
    sizes = shown.groupby("request_id")["candidates"].first().map(len)
    modal = int(sizes.mode().iloc[0])
    keep = sizes.index[sizes == modal]
    return shown[shown["request_id"].isin(keep)].reset_index(drop=True)


@component(code_deps=("recops.ope", "recops.experiments.policies"))
def off_policy(
    model: TwoTower,
    logged: ExposureData | None,
    data: Dataset,
    config: OPEConfig,
    positive_events: tuple[str, ...] = ("click",),
) -> OffPolicyEvaluation | None:
    """Estimate the new model's CTR on the logged requests (None without a log)."""
    from recops.experiments.policies import GreedyPolicy
    from recops.ope.exposures import read_exposures, write_exposures
    from recops.ope.report import evaluate_policy
    from recops.ope.rescore import CausalHistories, candidate_support, score_candidates
    from recops.ope.reward_model import ActionPositionMeanModel, RewardData, cross_fit_predict
    from recops.ope.target import batch_from_ranking_policy

    if logged is None:
        return None
    shown = _one_shape(logged.shown)
    versions = shown.groupby(shown["model"] + ":" + shown["version"])["reward"].mean()
    n_requests = int(shown["request_id"].nunique())
    common: dict[str, Any] = {
        "requests": n_requests,
        "rows": len(shown),
        "logged_ctr": float(shown["reward"].mean()) if len(shown) else None,
        "logged_by_version": {str(k): float(v) for k, v in versions.items()},
    }
    if n_requests < config.min_requests:
        return OffPolicyEvaluation(
            evaluated=False,
            reason=f"{n_requests} logged requests (ope.min_requests is {config.min_requests})",
            estimates=(),
            recommended=None,
            overlap=None,
            **common,
        )
    with tempfile.TemporaryDirectory(prefix="recops-ope-") as tmp:
        log = read_exposures(write_exposures(shown, Path(tmp) / "exposures.parquet"))
    assert log.candidates is not None and log.feedback.action_ids is not None
    firsts = shown.drop_duplicates("request_id").sort_values("request_id", kind="stable")
    candidates = [log.feedback.action_ids[c].tolist() for c in log.candidates]
    positives = data.interactions[data.interactions[EVENT].isin(positive_events)]
    events = positives[[USER_ID, ITEM_ID, TIMESTAMP]]
    units = firsts["unit"].astype(str).tolist()
    times = firsts["timestamp"].to_numpy(dtype=np.int64)
    # Built once for both: it sorts and groups every event by user.
    histories = CausalHistories(pd.concat([events, logged.clicks], ignore_index=True))
    scores = score_candidates(model, units, times, candidates, histories)
    support = candidate_support(model, units, times, candidates, histories, k=log.feedback.len_list)
    rewards = RewardData.from_feedback(log.feedback)
    q_hat = cross_fit_predict(ActionPositionMeanModel, rewards, 2, 0)
    policy = GreedyPolicy(slate_size=log.feedback.len_list)
    batch = batch_from_ranking_policy(log.feedback, log.candidates, list(scores), policy, q_hat)
    report = evaluate_policy(batch, title="the new model, greedy, on the logged candidates")
    return OffPolicyEvaluation(
        evaluated=True,
        reason=report.recommendation.reason,
        estimates=tuple(
            Estimate(
                estimator=e.estimator,
                value=float(e.value),
                ci_low=float(e.ci_low),
                ci_high=float(e.ci_high),
                ess=float(e.ess),
            )
            for e in report.estimates
        ),
        recommended=report.recommendation.estimator,
        overlap=report.recommendation.overlap,
        support=support,
        **common,
    )
