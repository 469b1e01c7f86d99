"""YAML as GitHub and Docker Compose read it, and the JSON schemas check-jsonschema vendors.

PyYAML follows YAML 1.1, where a bare ``on`` is the boolean true; GitHub Actions and
Compose read YAML 1.2, where only ``true``/``false`` are booleans. :func:`load_yaml`
reads the 1.2 way, so a workflow's ``on:`` stays the key ``"on"``.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are YAML 1.2's: true and false only."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def load_yaml(path: Path) -> Any:
    """The document in ``path``, read as YAML 1.2."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader)


def vendored_schema(name: str) -> dict[str, Any]:
    """A schema that check-jsonschema ships (``compose-spec``, ``github-workflows``, ...)."""
    pytest.importorskip(
        "check_jsonschema", reason="the schemas come with check-jsonschema: pip install it"
    )
    folder = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return schema


def schema_errors(instance: Any, name: str) -> list[str]:
    """Every violation of the vendored schema ``name``, as ``path: message``."""
    schema = vendored_schema(name)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in validator.iter_errors(instance)
    )
