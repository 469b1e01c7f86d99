"""The gated training pipeline's config: the training config plus ``[registry]`` and ``[gate]``.

Everything :mod:`recops.pipelines.training.config` describes, and::

    [registry]                    # MLflow (default: $MLFLOW_TRACKING_URI, else SQLite
    tracking_uri = "sqlite:///recops-data/mlflow/mlflow.db"   # under $RECOPS_HOME)
    experiment = "recops-train"

    [[gate.rules]]                # the default rules are these four
    kind = "offline"              # Recall@20 not worse than the champion's by > 2%
    metric = "recall@20"
    max_relative_drop = 0.02
    [[gate.rules]]
    kind = "ope"                  # OPE lower bound of CTR >= champion's on-policy CTR
    [[gate.rules]]
    kind = "data_checks"          # no failed data check
    [[gate.rules]]
    kind = "smoke_test"           # loads in the server and answers
    k = 10

(see :mod:`recops.registry.gates` for every field).
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from recops.pipelines.training.config import TrainingConfig
from recops.registry.gates import GateConfig, OfflineRule
from recops.registry.settings import RegistryConfig


class GatedTrainingConfig(TrainingConfig):
    """:class:`~recops.pipelines.training.TrainingConfig` with the registry and the gate."""

    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    gate: GateConfig = Field(default_factory=GateConfig)

    @model_validator(mode="after")
    def _gate_metrics_are_evaluated(self) -> Self:
        ks = set(self.evaluate.ks)
        for i, rule in enumerate(self.gate.rules):
            if isinstance(rule, OfflineRule) and int(rule.metric.split("@")[1]) not in ks:
                raise ValueError(
                    f"gate.rules.{i}.metric {rule.metric!r} needs its k in evaluate.ks "
                    f"(evaluate.ks is {sorted(ks)})"
                )
        return self
