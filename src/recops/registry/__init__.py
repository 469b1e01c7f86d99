"""MLflow tracking and model registry, validation gates, and the gated training pipeline.

>>> from recops.registry import Registry
>>> registry = Registry()                  # $MLFLOW_TRACKING_URI, else SQLite under $RECOPS_HOME
>>> registry.champion("two_tower")         # doctest: +SKIP
>>> registry.promote("two_tower", "4", reason="A/B test says ship")  # doctest: +SKIP

Modules: ``settings`` (where the store is), ``client`` (:class:`Registry`: versions,
aliases, promotion, rollback), ``audit`` (who moved an alias, when, why), ``versions``
(a registered version and its tags), ``tracking`` (a pipeline run in MLflow),
``materialise`` (a version as a model repository folder), ``resolver`` (experiment
variants with ``alias = "champion"``), ``smoke`` (the server's smoke test), ``gates``
(the rules and the verdict), ``config``, ``steps`` and ``pipeline`` (the gated
training pipeline). The package itself imports only the light modules (no torch,
no pandas), so the server and the CLI can follow aliases cheaply; the gate's types
are in :mod:`recops.registry.gates` (``GateResult``, ``RuleOutcome``, ``GateConfig``).
"""

from recops.registry.audit import AliasMove
from recops.registry.client import (
    CHALLENGER,
    CHAMPION,
    PromotionError,
    Registry,
    RegistryError,
    VersionNotFoundError,
)
from recops.registry.settings import RegistryConfig, default_tracking_uri
from recops.registry.versions import RegisteredVersion

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "AliasMove",
    "PromotionError",
    "RegisteredVersion",
    "Registry",
    "RegistryConfig",
    "RegistryError",
    "VersionNotFoundError",
    "default_tracking_uri",
]
