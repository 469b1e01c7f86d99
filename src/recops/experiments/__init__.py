"""recops.experiments."""

from recops.experiments.assignment import Assigner, Assignment, Segment, bucket
from recops.experiments.bandit import SoftmaxBandit
from recops.experiments.config import (
    ExperimentConfig,
    ExperimentConfigError,
    ModelRef,
    ModelResolver,
    VariantConfig,
    load_experiment,
    parse_metric,
)
from recops.experiments.interleaving import (
    InterleavedSlate,
    InterleavingResult,
    analyze_interleaving,
    team_draft,
)
from recops.experiments.policies import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    PlackettLucePolicy,
    RankingPolicy,
    SlateSample,
    action_distribution,
)
from recops.experiments.serving_policy import (
    EpsilonGreedyServing,
    GreedyServing,
    PlackettLuceServing,
    ServingPolicy,
    Slate,
    build_policy,
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
    "EpsilonGreedyServing",
    "ExperimentConfig",
    "ExperimentConfigError",
    "ExperimentRecord",
    "ExperimentStore",
    "ExperimentStoreError",
    "GreedyPolicy",
    "GreedyServing",
    "InterleavedSlate",
    "InterleavingResult",
    "ModelRef",
    "ModelResolver",
    "PlackettLucePolicy",
    "PlackettLuceServing",
    "RankingPolicy",
    "Segment",
    "ServingPolicy",
    "Slate",
    "SlateSample",
    "SoftmaxBandit",
    "VariantConfig",
    "action_distribution",
    "analyze_interleaving",
    "bucket",
    "build_policy",
    "load_experiment",
    "parse_metric",
    "team_draft",
]
