"""What a step produces: typed, content-addressed artifacts.

Every output of a step is stored once in an :class:`~recops.pipelines.store.ArtifactStore`
under its **digest**: the sha256 of its content as its codec wrote it (see
:mod:`recops.pipelines.codecs`), so the same data written by two runs, two
executors or two machines has one address, and a step whose inputs have the same
digests as before is a cache hit.

Four kinds, for people and for the steps that come after (register, gate, deploy):

========== ======================================================= ==================
kind       what                                                    stored as
========== ======================================================= ==================
dataset    a DataFrame, a :class:`recops.data.schema.Dataset`, or  Parquet
           a dataclass holding frames
model      a fitted :class:`~recops.models.two_tower.TwoTower`     safetensors + JSON
metrics    a :class:`Metrics` (pydantic) model                     JSON
report     a :class:`Report` (pydantic) model, a dataclass or      JSON
           plain JSON values
========== ======================================================= ==================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

KINDS = ("dataset", "model", "metrics", "report")


class Report(BaseModel):
    """A typed JSON document a step produces (a data check, an OPE estimate, ...).

    Subclass it with the fields of the report; ``artifact_kind`` says how runs
    display it. Reports are immutable once produced.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    artifact_kind: ClassVar[str] = "report"


class Metrics(Report):
    """A report whose fields are metrics (offline scores, estimates) a gate reads."""

    artifact_kind: ClassVar[str] = "metrics"


@dataclass(frozen=True)
class ArtifactRecord:
    """One stored artifact, as the run store and the store's manifest describe it.

    Parameters
    ----------
    digest:
        ``sha256`` hex of the artifact's content (its address).
    kind:
        One of :data:`KINDS`.
    codec:
        The codec that wrote it (``dataframe``, ``struct``, ``two_tower``, ...).
    type:
        ``module:qualname`` of the Python type written.
    uri:
        Where its files are (``<store>/<digest>``).
    size:
        Bytes of its files.
    summary:
        A few facts for people (rows, columns, items, ...).
    """

    digest: str
    kind: str
    codec: str
    type: str
    uri: str
    size: int
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values."""
        return {
            "digest": self.digest,
            "kind": self.kind,
            "codec": self.codec,
            "type": self.type,
            "uri": self.uri,
            "size": self.size,
            "summary": dict(self.summary),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            digest=str(data["digest"]),
            kind=str(data["kind"]),
            codec=str(data["codec"]),
            type=str(data["type"]),
            uri=str(data["uri"]),
            size=int(data["size"]),
            summary=dict(data.get("summary") or {}),
        )


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact that exists already (from an earlier run), given to a step as an input.

    Parameters
    ----------
    digest:
        Its address in the store.
    origin:
        Where it came from, for lineage (``"run <id> step <name>"``).
    """

    digest: str
    origin: str = ""
