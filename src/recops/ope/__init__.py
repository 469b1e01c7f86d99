"""Off-policy evaluation: estimate how a new policy would do online, from logs of the current one.

Typical use::

    from recops.ope import OPEBatch, read_obd, evaluate_policy

    logs = read_obd("../shared/data/obd", behavior_policy="random", campaign="all")
    batch = OPEBatch.from_action_dist(logs, action_dist, estimated_rewards=q_hat)
    report = evaluate_policy(batch)      # every estimator + which one to trust

Estimators are frozen dataclasses whose docstrings state their formula and reference;
each ``estimate(batch)`` returns an :class:`Estimate` (value, interval, Kish ESS).
"""

from recops.ope.base import BaseEstimator, Estimate
from recops.ope.batch import OPEBatch
from recops.ope.direct import DirectMethod
from recops.ope.doubly_robust import (
    DoublyRobust,
    DoublyRobustWithShrinkage,
    SelfNormalizedDR,
    SwitchDoublyRobust,
)
from recops.ope.exposures import (
    ExposureLog,
    exposures_from_interactions,
    read_exposures,
    write_exposures,
)
from recops.ope.feedback import LoggedFeedback, read_obd
from recops.ope.importance import InverseProbabilityWeighting, SelfNormalizedIPW
from recops.ope.intervals import bootstrap_interval, kish_ess, normal_interval
from recops.ope.report import OPEReport, Recommendation, evaluate_policy, recommend
from recops.ope.reward_model import (
    ActionPositionMeanModel,
    LogisticRewardModel,
    RewardData,
    cross_fit_predict,
)
from recops.ope.slate import (
    SlateBatch,
    SlateIndependentIPS,
    SlateRewardInteractionIPS,
    SlateStandardIPS,
)
from recops.ope.target import batch_from_ranking_policy, model_candidate_scores

__all__ = [
    "ActionPositionMeanModel",
    "BaseEstimator",
    "DirectMethod",
    "DoublyRobust",
    "DoublyRobustWithShrinkage",
    "Estimate",
    "ExposureLog",
    "InverseProbabilityWeighting",
    "LoggedFeedback",
    "LogisticRewardModel",
    "OPEBatch",
    "OPEReport",
    "Recommendation",
    "RewardData",
    "SelfNormalizedDR",
    "SelfNormalizedIPW",
    "SlateBatch",
    "SlateIndependentIPS",
    "SlateRewardInteractionIPS",
    "SlateStandardIPS",
    "SwitchDoublyRobust",
    "batch_from_ranking_policy",
    "bootstrap_interval",
    "cross_fit_predict",
    "evaluate_policy",
    "exposures_from_interactions",
    "kish_ess",
    "model_candidate_scores",
    "normal_interval",
    "read_exposures",
    "read_obd",
    "recommend",
    "write_exposures",
]
