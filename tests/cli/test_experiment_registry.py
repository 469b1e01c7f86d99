"""``recops experiment create|start --registry URI``: variants by registry alias."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from recops.cli import app
from recops.registry import Registry
from tests.registry.conftest import MODEL, add_version, judge

runner = CliRunner()

CONFIG = """\
name = "champion-vs-challenger"
layer = "ranking"
control = "champion"
primary_metric = "clicks/impressions"

[[variants]]
name = "champion"
alias = "champion"

[[variants]]
name = "challenger"
alias = "challenger"
"""


def test_aliases_resolve_through_the_registry_and_are_pinned_at_start(
    tmp_path: Path, trained_artifact: Path, second_artifact: Path
) -> None:
    uri = os.environ["MLFLOW_TRACKING_URI"]
    registry = Registry(uri)
    published = tmp_path / "published"
    judge(registry, add_version(registry, published, trained_artifact, "1", "aa11"), True)
    judge(registry, add_version(registry, published, second_artifact, "2", "bb22"), True)
    registry.promote(MODEL, "1", reason="first")
    registry.promote(MODEL, "2", alias="challenger", reason="gate passed")
    config = tmp_path / "exp.toml"
    config.write_text(CONFIG)
    served = tmp_path / "served"
    served.mkdir()
    where = ["--event-log", str(tmp_path / "events.sqlite3"), "--models", str(served)]

    without = runner.invoke(app, ["experiment", "create", str(config), *where])
    assert without.exit_code == 2 and "field 'variants[0].alias'" in without.output

    created = runner.invoke(
        app, ["experiment", "create", str(config), *where, "--registry", uri, "--json"]
    )
    assert created.exit_code == 0, created.output
    started = runner.invoke(
        app, ["experiment", "start", "champion-vs-challenger", *where, "--registry", uri,
              "--json"]
    )  # fmt: skip
    assert started.exit_code == 0, started.output
    record = json.loads(started.stdout)
    assert record["models"] == {
        "champion": {"model": MODEL, "version": "1"},
        "challenger": {"model": MODEL, "version": "2"},
    }
    # Materialised into the server's repository, so the server can load them.
    assert (served / MODEL / "1" / "config.json").is_file()
    assert (served / MODEL / "2" / "config.json").is_file()
