"""Steps ``champion`` and ``evaluate``: the new model against the current champion, offline.

Here the *champion* is the highest version of the model in the model repository
(what ``recops serve`` serves by default); the gated pipeline
(:mod:`recops.registry.pipeline`) takes the registry's ``champion`` alias instead,
through the same :class:`Champion`. Both models rank the same
candidates for the same users of the same split (``recops.evaluation.evaluate``);
:class:`OfflineEvaluation` holds each one's Recall/NDCG/hit rate/MRR@k per slice
(all, warm, cold, new items) with bootstrap intervals, and the paired bootstrap
difference (new − champion) over all users. A champion trained on events at or after
the split's cutoff has seen the test period; ``champion_saw_test_period`` says so,
because its scores are then optimistic.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from recops.evaluation import EvaluationResult, Interval, evaluate, paired_bootstrap
from recops.evaluation.protocol import GROUPS
from recops.models.two_tower import TwoTower
from recops.pipelines.artifacts import Metrics, Report
from recops.pipelines.component import component
from recops.pipelines.training.config import EvaluateConfig
from recops.pipelines.training.split import SplitData


@dataclass(frozen=True)
class Champion:
    """The model version currently served, loaded from the model repository."""

    model: TwoTower
    name: str
    version: str


def champion_fingerprint(repository: str, name: str) -> str | None:
    """The champion's version and the sha256 of its ``config.json`` (which hashes the rest)."""
    from recops.serving.repository import ModelRepository

    repo = ModelRepository(repository)
    versions = repo.models().get(name, [])
    if not versions:
        return "none"
    config = repo.storage.read_bytes(name, versions[-1], "config.json")
    digest = "-" if config is None else hashlib.sha256(config).hexdigest()
    return f"{versions[-1]}:{digest}"


@component(fingerprint=champion_fingerprint, code_deps=("recops.models.two_tower",))
def champion(repository: str, name: str) -> Champion | None:
    """The latest version of ``name`` in the repository, or None when there is none."""
    from recops.serving.repository import ModelRepository

    repo = ModelRepository(repository)
    versions = repo.models().get(name, [])
    if not versions:
        return None
    return Champion(TwoTower.load(repo.path(name, versions[-1])), name, versions[-1])


class Score(Report):
    """A metric's mean over users with its bootstrap interval (None when undefined)."""

    mean: float | None
    low: float | None
    high: float | None


class ModelScores(Report):
    """One model's metrics per slice of users (``all``, ``warm``, ``cold``, ``new_items``)."""

    users: dict[str, int]
    metrics: dict[str, dict[str, Score]]


class OfflineEvaluation(Metrics):
    """The new model and the champion on the same split (see the module docstring)."""

    split: dict[str, object]
    ks: tuple[int, ...]
    candidate: ModelScores
    champion: ModelScores | None
    champion_version: str | None
    champion_trained_until: int | None
    champion_saw_test_period: bool | None
    difference: dict[str, Score] | None
    p_value: dict[str, float] | None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _score(interval: Interval) -> Score:
    return Score(
        mean=_finite(interval.mean), low=_finite(interval.low), high=_finite(interval.high)
    )


def _scores(result: EvaluationResult) -> ModelScores:
    return ModelScores(
        users={g: result.n_users(g) for g in GROUPS},
        metrics={g: {m: _score(iv) for m, iv in result.summary(g).items()} for g in GROUPS},
    )


@component(
    code_deps=("recops.evaluation", "recops.models.two_tower", "recops.pipelines.training.split")
)
def evaluate_models(
    data: SplitData,
    model: TwoTower,
    champion: Champion | None,
    config: EvaluateConfig,
) -> OfflineEvaluation:
    """Offline metrics of ``model`` and ``champion`` on the same split."""
    split = data.split()
    new = evaluate(model, split, config.ks, name="candidate", n_boot=config.n_boot)
    old = None
    difference = p_values = None
    trained_until = None
    if champion is not None:
        old = evaluate(champion.model, split, config.ks, name="champion", n_boot=config.n_boot)
        pairs = {
            m: paired_bootstrap(new.values(m), old.values(m), n_boot=config.n_boot)
            for m in new.per_user
        }
        difference = {m: _score(p.difference) for m, p in pairs.items()}
        p_values = {m: float(p.p_value) for m, p in pairs.items()}
        times = champion.model.events_.times
        trained_until = int(np.max(times)) if len(times) else None
    return OfflineEvaluation(
        split=data.summary,
        ks=tuple(sorted(set(config.ks))),
        candidate=_scores(new),
        champion=None if old is None else _scores(old),
        champion_version=None if champion is None else champion.version,
        champion_trained_until=trained_until,
        champion_saw_test_period=(None if trained_until is None else trained_until >= data.cutoff),
        difference=difference,
        p_value=p_values,
    )
