"""recops.experiments."""

from recops.experiments.assignment import Assigner, Assignment, Segment, bucket
from recops.experiments.config import (
    ExperimentConfig,
    ExperimentConfigError,
    ModelRef,
    ModelResolver,
    VariantConfig,
    load_experiment,
    parse_metric,
)
from recops.experiments.policies import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    PlackettLucePolicy,
    RankingPolicy,
    SlateSample,
    action_distribution,
)
from recops.experiments.store import (
    ExperimentRecord,
    ExperimentStore,
    ExperimentStoreError,
)

__all__ = [
    "Assigner",
    "Assignment",
    "EpsilonGreedyPolicy",
    "ExperimentConfig",
    "ExperimentConfigError",
    "ExperimentRecord",
    "ExperimentStore",
    "ExperimentStoreError",
    "GreedyPolicy",
    "ModelRef",
    "ModelResolver",
    "PlackettLucePolicy",
    "RankingPolicy",
    "Segment",
    "SlateSample",
    "VariantConfig",
    "action_distribution",
    "bucket",
    "load_experiment",
    "parse_metric",
]
