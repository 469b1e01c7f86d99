"""The audit of alias moves: who pointed which alias at which version, when and why.

Every move is one tag of the registered model, so the audit lives in the registry
itself (a tracking server keeps it too) and is append-only by construction: a new
key per move, ``recops.audit.<unix ns, 20 digits>.<6 hex>``, which sorts in time
order. Its value is the move as JSON (:class:`AliasMove`). The version that
receives the alias also gets ``recops.<alias>.action|by|at|reason`` tags, and the
version that loses it ``recops.<alias>.left_at|left_by|left_reason``, so the
MLflow UI shows both sides.

**Rollback.** The moves of an alias are replayed as a stack: ``promote`` and
``deploy`` push their version, ``rollback`` pops. Rolling back returns the alias to
the version under the top, i.e. the one it held before the current one was
promoted; rolling back again goes one further back. An alias moved outside recops
(by the MLflow UI) counts as pushed on top.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Literal

AUDIT_PREFIX = "recops.audit."
#: Longest reason kept (tag values are bounded; a reason is a sentence).
MAX_REASON = 2000

Action = Literal["promote", "rollback", "deploy"]


@dataclass(frozen=True)
class AliasMove:
    """One alias move.

    Parameters
    ----------
    model:
        The registered model.
    alias:
        ``champion``, ``challenger`` (or another alias).
    version:
        The version the alias points at after the move.
    previous:
        The version it pointed at before (None: it was not set).
    action:
        ``promote`` (by a person or the CT controller), ``rollback``, or ``deploy``
        (the pipeline, after a passed gate).
    actor:
        Who moved it.
    reason:
        Why.
    at:
        Unix seconds.
    """

    model: str
    alias: str
    version: str
    previous: str | None
    action: Action
    actor: str
    reason: str
    at: float

    def to_json(self) -> str:
        """The move as the JSON tag value."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AliasMove:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            model=str(data["model"]),
            alias=str(data["alias"]),
            version=str(data["version"]),
            previous=None if data.get("previous") is None else str(data["previous"]),
            action=data["action"],
            actor=str(data["actor"]),
            reason=str(data["reason"]),
            at=float(data["at"]),
        )


def audit_key(at: float | None = None) -> str:
    """A new, time-ordered tag key for one move."""
    ns = time.time_ns() if at is None else int(at * 1e9)
    return f"{AUDIT_PREFIX}{ns:020d}.{secrets.token_hex(3)}"


def read_moves(tags: dict[str, str], alias: str | None = None) -> list[AliasMove]:
    """The moves recorded in a registered model's tags, oldest first (one alias, or all)."""
    moves = [AliasMove.from_json(v) for k, v in sorted(tags.items()) if k.startswith(AUDIT_PREFIX)]
    return [m for m in moves if alias is None or m.alias == alias]


def rollback_target(moves: list[AliasMove], current: str | None) -> str | None:
    """The version a rollback returns the alias to (see the module docstring), or None.

    ``moves`` are one alias's moves, oldest first; ``current`` is where it points now.
    """
    stack: list[str] = []
    for move in moves:
        if move.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != move.version:
                stack.append(move.version)
        else:
            stack.append(move.version)
    if current is not None and (not stack or stack[-1] != current):
        stack.append(current)
    # Consecutive pushes of one version (a redeploy) are one step of history.
    history = [v for i, v in enumerate(stack) if i == 0 or stack[i - 1] != v]
    return history[-2] if len(history) >= 2 else None
