"""The MLflow model registry as recops uses it: versions, aliases, promotion and rollback.

:class:`Registry` wraps one ``MlflowClient`` (the embedded SQLite store by
default, any tracking server unchanged; see :mod:`recops.registry.settings`). It is
the API the continuous-training controller calls::

    registry = Registry()                                  # or Registry.from_config(...)
    registry.champion("two_tower")                         # RegisteredVersion | None
    registry.challenger("two_tower")
    registry.promote("two_tower", "4", actor="ct", reason="A/B test says ship")
    registry.rollback("two_tower", actor="ct", reason="guardrail clicks/requests failed")
    registry.gate_result("two_tower", "4")                 # GateResult | None

Aliases (``champion``, ``challenger``) replace MLflow's deprecated stages. Every
move is audited (:mod:`recops.registry.audit`). :meth:`Registry.promote` only
moves an alias to a version whose gate passed, unless ``force``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recops.registry.audit import MAX_REASON, Action, AliasMove, audit_key, read_moves
from recops.registry.audit import rollback_target as stack_target
from recops.registry.settings import (
    REGISTRY_ENV,
    RegistryConfig,
    default_artifact_root,
    default_tracking_uri,
    display_uri,
    sqlalchemy_uri,
)
from recops.registry.versions import MODEL_PATH, TAG_DIGEST, TAG_GATE_RESULT, RegisteredVersion

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from recops.registry.gates import GateResult

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Registered model names and aliases: what the model repository and MLflow both accept.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the message says why and what to do."""


class VersionNotFoundError(RegistryError, LookupError):
    """No such registered model, version or alias."""


class PromotionError(RegistryError, ValueError):
    """An alias move that is refused (a failed gate, nothing to roll back to)."""


def check_model_name(name: str) -> str:
    """``name`` if it is a valid registered model name (a repository model name too)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"a model name is 1-128 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit (got {name!r})"
        )
    return name


def check_alias(alias: str) -> str:
    """``alias`` if it is a valid alias (MLflow refuses ``latest`` and ``v<digits>``)."""
    if (
        not isinstance(alias, str)
        or not _ALIAS.match(alias)
        or alias.lower() == "latest"
        or re.fullmatch(r"[vV]\d+", alias)
    ):
        raise ValueError(
            f"an alias is 1-64 letters, digits, '_' or '-', starting with a letter, and not "
            f"'latest' or 'v<number>' (got {alias!r})"
        )
    return alias


def _error_code(err: Exception) -> str | None:
    code = getattr(err, "error_code", None)
    return None if code is None else str(code)


def _mkdir_for(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)


class Registry:
    """A connection to the MLflow tracking store and model registry.

    Parameters
    ----------
    tracking_uri:
        Default: ``$MLFLOW_TRACKING_URI``, else the embedded SQLite store. A
        PostgreSQL database may be named as ``postgresql://...`` (the event log's
        form): it is opened with psycopg 3 (:func:`~recops.registry.settings.sqlalchemy_uri`).
    registry_uri:
        Default: ``$MLFLOW_REGISTRY_URI``, else the tracking URI.
    artifact_root:
        Where new experiments keep artifacts (default:
        :func:`~recops.registry.settings.default_artifact_root`).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        artifact_root: str | None = None,
    ) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = sqlalchemy_uri(tracking_uri or default_tracking_uri())
        self.registry_uri = sqlalchemy_uri(
            registry_uri or os.environ.get(REGISTRY_ENV) or self.tracking_uri
        )
        self.artifact_root = artifact_root or default_artifact_root(self.tracking_uri)
        _mkdir_for(self.tracking_uri)
        _mkdir_for(self.registry_uri)
        # A progress bar per download is noise in a server's log and in the CLI.
        os.environ.setdefault(_PROGRESS_ENV, "false")
        self.client: MlflowClient = MlflowClient(
            tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
        )

    @classmethod
    def from_config(cls, config: RegistryConfig) -> Registry:
        """The registry a pipeline config's ``[registry]`` section names."""
        return cls(config.tracking_uri, config.registry_uri, config.artifact_root)

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    @property
    def location(self) -> str:
        """The tracking store, for messages and reports: no password."""
        return display_uri(self.tracking_uri)

    # ------------------------------------------------------------- experiments
    def experiment_id(self, name: str) -> str:
        """The id of the MLflow experiment ``name``, created if absent."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None if self.artifact_root is None else f"{self.artifact_root}/{name}"
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except Exception as err:
            if _error_code(err) != "RESOURCE_ALREADY_EXISTS":
                raise
        again = self.client.get_experiment_by_name(name)  # created meanwhile by another process
        assert again is not None
        return str(again.experiment_id)

    # ---------------------------------------------------------------- versions
    def versions(self, name: str) -> list[RegisteredVersion]:
        """Every version of ``name``, oldest first (empty when the model is unknown)."""
        found = self.client.search_model_versions(f"name = '{check_model_name(name)}'")
        if not found:
            return []
        # A search leaves the aliases out; the registered model holds them.
        aliases: dict[str, list[str]] = {}
        for alias, version in (self.client.get_registered_model(name).aliases or {}).items():
            aliases.setdefault(str(version), []).append(str(alias))
        versions = [
            replace(v, aliases=tuple(sorted(aliases.get(v.version, ()))))
            for v in map(RegisteredVersion.from_mlflow, found)
        ]
        return sorted(versions, key=lambda v: int(v.version))

    def models(self) -> list[str]:
        """Names of the registered models."""
        return sorted(str(m.name) for m in self.client.search_registered_models())

    def version(self, name: str, version: str) -> RegisteredVersion:
        """One version; VersionNotFoundError naming the versions there are."""
        try:
            mv = self.client.get_model_version(check_model_name(name), str(version))
        except Exception as err:
            if _error_code(err) not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            known = ", ".join(v.version for v in self.versions(name)) or "none"
            raise VersionNotFoundError(
                f"model {name!r} has no registered version {version!r} (versions: {known})"
            ) from None
        return RegisteredVersion.from_mlflow(mv)

    def alias(self, name: str, alias: str) -> RegisteredVersion | None:
        """The version ``alias`` points at, or None when it is not set (or no such model)."""
        try:
            mv = self.client.get_model_version_by_alias(check_model_name(name), check_alias(alias))
        except Exception as err:
            if _error_code(err) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return RegisteredVersion.from_mlflow(mv)

    def champion(self, name: str) -> RegisteredVersion | None:
        """The version ``champion`` points at (what a following server serves)."""
        return self.alias(name, CHAMPION)

    def challenger(self, name: str) -> RegisteredVersion | None:
        """The version ``challenger`` points at (the last one that passed its gate)."""
        return self.alias(name, CHALLENGER)

    def find_digest(self, name: str, digest: str) -> RegisteredVersion | None:
        """The oldest version of ``name`` holding the model artifact ``digest``, if any."""
        if not re.fullmatch(r"[0-9a-f]{1,128}", digest):
            raise ValueError(f"a model digest is lowercase hex (got {digest!r})")
        query = f"name = '{check_model_name(name)}' and tags.`{TAG_DIGEST}` = '{digest}'"
        found = sorted(
            (RegisteredVersion.from_mlflow(mv) for mv in self.client.search_model_versions(query)),
            key=lambda v: int(v.version),
        )
        return found[0] if found else None

    def register(
        self, name: str, run_id: str, tags: dict[str, str], path: str = MODEL_PATH
    ) -> RegisteredVersion:
        """A new version of ``name`` (created if absent) from run ``run_id``'s ``path``."""
        check_model_name(name)
        try:
            self.client.create_registered_model(name)
        except Exception as err:
            if _error_code(err) != "RESOURCE_ALREADY_EXISTS":
                raise
        mv = self.client.create_model_version(
            name, f"runs:/{run_id}/{path}", run_id=run_id, tags=tags
        )
        return RegisteredVersion.from_mlflow(mv)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        """Set tags on a version."""
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, value)

    def download(self, name: str, version: str, destination: Path) -> Path:
        """Copy the version's model directory into the empty folder ``destination``."""
        found = self.version(name, version)
        destination.mkdir(parents=True, exist_ok=True)
        if found.run_id is None:
            raise RegistryError(f"model {name!r} version {version} has no run to download from")
        local = self.client.download_artifacts(found.run_id, MODEL_PATH, str(destination))
        return Path(local)

    def log_json(self, run_id: str, path: str, document: Any) -> None:
        """Write ``document`` as the JSON artifact ``path`` of run ``run_id``."""
        with tempfile.TemporaryDirectory(prefix="recops-mlflow-") as tmp:
            file = Path(tmp) / Path(path).name
            file.write_text(json.dumps(document, indent=2, sort_keys=True))
            parent = str(Path(path).parent)
            self.client.log_artifact(run_id, str(file), None if parent == "." else parent)

    def gate_result(self, name: str, version: str) -> GateResult | None:
        """The last gate verdict stored with the version, with every reason (None: never gated)."""
        from recops.registry.gates import GateResult

        text = self.version(name, version).tags.get(TAG_GATE_RESULT)
        return None if text is None else GateResult.model_validate_json(text)

    # ----------------------------------------------------------------- aliases
    def audit(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every recorded alias move of ``name`` (one alias, or all), oldest first."""
        try:
            model = self.client.get_registered_model(check_model_name(name))
        except Exception as err:
            if _error_code(err) == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        return read_moves(dict(model.tags or {}), alias)

    def move_alias(
        self,
        name: str,
        alias: str,
        version: str,
        *,
        action: Action,
        actor: str | None,
        reason: str,
    ) -> AliasMove:
        """Point ``alias`` at ``version`` and record who, when and why (no checks)."""
        from recops.experiments.store import default_actor

        check_alias(alias)
        target = self.version(name, version)
        previous = self.alias(name, alias)
        move = AliasMove(
            model=name,
            alias=alias,
            version=target.version,
            previous=None if previous is None else previous.version,
            action=action,
            actor=actor or default_actor(),
            reason=reason.strip()[:MAX_REASON],
            at=time.time(),
        )
        self.client.set_registered_model_alias(name, alias, target.version)
        self.client.set_registered_model_tag(name, audit_key(move.at), move.to_json())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(move.at))
        self.set_tags(
            name,
            target.version,
            {
                f"recops.{alias}.action": action,
                f"recops.{alias}.by": move.actor,
                f"recops.{alias}.at": stamp,
                f"recops.{alias}.reason": move.reason,
            },
        )
        if previous is not None and previous.version != target.version:
            self.set_tags(
                name,
                previous.version,
                {
                    f"recops.{alias}.left_at": stamp,
                    f"recops.{alias}.left_by": move.actor,
                    f"recops.{alias}.left_reason": f"{action} to version {target.version}: "
                    + move.reason,
                },
            )
        return move

    def promote(
        self,
        name: str,
        version: str,
        *,
        alias: str = CHAMPION,
        actor: str | None = None,
        reason: str,
        force: bool = False,
    ) -> AliasMove:
        """Point ``alias`` (``champion`` by default) at ``version``, audited.

        Refused (PromotionError) when the version's gate failed or it never went
        through one, unless ``force``; a forced promotion says so in the audit.
        """
        if not reason.strip():
            raise PromotionError("say why (a reason is recorded with every alias move)")
        target = self.version(name, version)
        if target.gate != "passed" and not force:
            said = "failed its gate" if target.gate == "failed" else "has no gate verdict"
            detail = ""
            result = self.gate_result(name, target.version) if target.gate else None
            if result is not None:
                detail = ": " + "; ".join(o.describe() for o in result.failed())
            raise PromotionError(
                f"model {name!r} version {target.version} {said}{detail} "
                "(force it with --force, and say why)"
            )
        text = reason if target.gate == "passed" else f"forced, gate {target.gate}: {reason}"
        return self.move_alias(
            name, alias, target.version, action="promote", actor=actor, reason=text
        )

    def rollback_target(self, name: str, alias: str = CHAMPION) -> RegisteredVersion | None:
        """The version :meth:`rollback` would move ``alias`` back to, if any."""
        current = self.alias(name, alias)
        target = stack_target(self.audit(name, alias), None if current is None else current.version)
        return None if target is None else self.version(name, target)

    def rollback(
        self, name: str, *, alias: str = CHAMPION, actor: str | None = None, reason: str
    ) -> AliasMove:
        """Move ``alias`` back to the version it held before the current one (audited)."""
        if not reason.strip():
            raise PromotionError("say why (a reason is recorded with every alias move)")
        target = self.rollback_target(name, alias)
        if target is None:
            raise PromotionError(
                f"alias {alias!r} of model {name!r} has no earlier version to roll back to "
                f"(see `recops model history {name}`)"
            )
        return self.move_alias(
            name, alias, target.version, action="rollback", actor=actor, reason=reason
        )
