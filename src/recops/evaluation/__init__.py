"""Splits, metrics, bootstrap intervals, the evaluation protocol and tuning.

A typical run::

    split = temporal_split(implicit_only(interactions))
    best, table = tune(EASE, {"l2": [100, 500]}, split)
    result = evaluate(EASE(**best).fit(split.train), split)
    result.summary("warm")["ndcg@20"]

Impression logs (what each user was shown and clicked, as in MIND) are ranked
impression by impression instead: ``evaluate_impressions(model, impression_split(events))``.
"""

from recops.evaluation.bootstrap import (
    Interval,
    PairedDifference,
    bootstrap_ci,
    intervals_overlap,
    paired_bootstrap,
)
from recops.evaluation.impressions import (
    ImpressionResult,
    ImpressionSplit,
    evaluate_impressions,
    impression_metrics,
    impression_split,
)
from recops.evaluation.metrics import (
    catalog_coverage,
    hit_matrix,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    per_user_metrics,
    recall_at_k,
)
from recops.evaluation.protocol import EvaluationResult, evaluate
from recops.evaluation.splits import (
    Split,
    implicit_only,
    leave_last_n_out,
    temporal_split,
    validation_split,
)
from recops.evaluation.tasks import evaluate_by_category, evaluate_search, evaluate_similar
from recops.evaluation.tuning import expand_grid, tune

__all__ = [
    "EvaluationResult",
    "ImpressionResult",
    "ImpressionSplit",
    "Interval",
    "PairedDifference",
    "Split",
    "bootstrap_ci",
    "catalog_coverage",
    "evaluate",
    "evaluate_by_category",
    "evaluate_impressions",
    "evaluate_search",
    "evaluate_similar",
    "expand_grid",
    "hit_matrix",
    "hit_rate_at_k",
    "implicit_only",
    "impression_metrics",
    "impression_split",
    "intervals_overlap",
    "leave_last_n_out",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_bootstrap",
    "per_user_metrics",
    "recall_at_k",
    "temporal_split",
    "tune",
    "validation_split",
]
