"""Experiment variants by registry alias: ``alias = "champion"`` resolves to a served version.

An experiment config's variant names a model ``version`` or an ``alias``
(:class:`recops.experiments.config.ModelResolver`). :func:`registry_resolver`
resolves every alias but ``latest`` through the MLflow registry — ``champion``,
``challenger``, or any other — and makes the version a folder of the server's model
repository (:func:`~recops.registry.materialise.materialise`), so the reference it
returns is one the server can load; versions and ``latest`` go to ``fallback``
(the model repository's own resolver). The experiment store pins what it returns
when the experiment starts, so moving an alias later does not change a running test.
"""

from __future__ import annotations

from pathlib import Path

from recops.experiments.config import ModelRef, ModelResolver
from recops.registry.client import Registry
from recops.registry.materialise import materialise_version


def registry_resolver(
    registry: Registry, repository: str | Path, fallback: ModelResolver
) -> ModelResolver:
    """A resolver of aliases through ``registry`` into ``repository`` (see the module docstring).

    Parameters
    ----------
    registry:
        Where aliases are looked up.
    repository:
        The model repository the server serves (versions are materialised there).
    fallback:
        Resolves versions and the alias ``latest`` (e.g.
        ``recops.cli.experiment.repository_resolver(repository)``).
    """
    root = repository

    def default_name() -> str:
        from recops.serving.repository import ModelRepository

        on_disk = list(ModelRepository(root).models())
        names = on_disk or registry.models()
        if len(names) != 1:
            raise LookupError(
                f"{len(names)} models ({', '.join(names) or 'none'}) in {root} and the "
                "registry: give the variant a `model`"
            )
        return names[0]

    def resolve(model: str | None, version: str | None, alias: str | None) -> ModelRef:
        if alias is None or alias == "latest":
            return fallback(model, version, alias)
        name = model or default_name()
        found = registry.alias(name, alias)
        if found is None:
            aliases = sorted({a for v in registry.versions(name) for a in v.aliases})
            raise LookupError(
                f"alias {alias!r} of model {name!r} is not set in the registry "
                f"{registry.location} (set: {', '.join(aliases) or 'none'}; "
                f"`recops model promote {name} VERSION --alias {alias}`)"
            )
        return ModelRef(name, materialise_version(registry, found, root))

    return resolve
