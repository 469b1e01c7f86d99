"""A registered model version as recops reads it, and the MLflow tags it keeps there.

A version's artifact is the recops model directory (the folder the model
repository serves: ``config.json``, ``vocab.json``, the ``*.safetensors`` files,
``items.parquet`` and ``recops-pipeline.json``), logged under the run's ``model/``
path; nothing is pickled and no MLflow flavor is used. recops' facts about a
version are tags:

================================ =====================================================
``recops.model_digest``          the model artifact's digest in the pipeline store (the
                                 ``train`` step's output, found by ``recops pipeline show``)
``recops.repository_version``    the folder name ``publish`` gave it in the model
                                 repository (``<repo>/<name>/<folder>/``)
``recops.data_version``          the digest of the ingested data it was trained on
``recops.gate``                  the last gate verdict: ``passed`` or ``failed``
``recops.gate.result``           that verdict with every rule's reason (JSON)
``recops.gate.rule.<rule>``      one line per rule: ``passed: ...``, ``failed: ...``
``recops.<alias>.action`` ...    who moved an alias here, when and why (see ``audit``)
================================ =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TAG_DIGEST = "recops.model_digest"
TAG_REPOSITORY_VERSION = "recops.repository_version"
TAG_DATA_VERSION = "recops.data_version"
TAG_GATE = "recops.gate"
TAG_GATE_RESULT = "recops.gate.result"
TAG_GATE_RULE = "recops.gate.rule."
#: The run artifact path holding the model directory.
MODEL_PATH = "model"


@dataclass(frozen=True)
class RegisteredVersion:
    """One version of a registered model.

    Parameters
    ----------
    name:
        The registered model (the model repository's model name).
    version:
        MLflow's version number, as a string.
    run_id:
        The MLflow run that logged it (the pipeline run's).
    source:
        Where its artifact is (``runs:/<run>/model``).
    aliases:
        The aliases pointing at it (``champion``, ``challenger``).
    created_at:
        Unix seconds of its registration.
    tags:
        All its tags (see the module docstring for recops' own).
    """

    name: str
    version: str
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    created_at: float
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def model_digest(self) -> str | None:
        """The model artifact's digest (``recops.model_digest``)."""
        return self.tags.get(TAG_DIGEST)

    @property
    def repository_version(self) -> str | None:
        """The folder the pipeline published it as (``recops.repository_version``)."""
        return self.tags.get(TAG_REPOSITORY_VERSION)

    @property
    def data_version(self) -> str | None:
        """The digest of the data it was trained on (``recops.data_version``)."""
        return self.tags.get(TAG_DATA_VERSION)

    @property
    def gate(self) -> str | None:
        """``passed``, ``failed``, or None when no gate judged it."""
        return self.tags.get(TAG_GATE)

    @classmethod
    def from_mlflow(cls, mv: Any) -> RegisteredVersion:
        """From an ``mlflow.entities.model_registry.ModelVersion``."""
        return cls(
            name=str(mv.name),
            version=str(mv.version),
            run_id=mv.run_id or None,
            source=str(mv.source),
            aliases=tuple(sorted(mv.aliases or ())),
            created_at=(mv.creation_timestamp or 0) / 1000.0,
            tags=dict(mv.tags or {}),
        )
