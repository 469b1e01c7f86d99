"""recops.experiments."""

from recops.experiments.policies import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    PlackettLucePolicy,
    RankingPolicy,
    SlateSample,
    action_distribution,
)

__all__ = [
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "PlackettLucePolicy",
    "RankingPolicy",
    "SlateSample",
    "action_distribution",
]
