"""``recops model``: list, show, promote, rollback and history, with clean errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from recops.cli import app
from recops.registry import Registry
from tests.registry.conftest import MODEL, add_version, judge

runner = CliRunner()


def _registry(tmp_path: Path, one: Path, two: Path) -> Registry:
    registry = Registry(os.environ["MLFLOW_TRACKING_URI"])
    judge(registry, add_version(registry, tmp_path / "models", one, "1", "aa11"), True)
    judge(registry, add_version(registry, tmp_path / "models", two, "2", "bb22"), False)
    return registry


def _model(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["model", *args])
    return result.exit_code, result.output


def test_promote_rollback_and_the_history_say_who_and_why(
    tmp_path: Path,
    trained_artifact: Path,
    second_artifact: Path,
) -> None:
    registry = _registry(tmp_path, trained_artifact, second_artifact)
    code, out = _model("promote", MODEL, "1", "-m", "first champion", "--actor", "ana")
    assert code == 0, out
    assert "champion → version 1 (was unset), promote by ana: first champion" in out
    code, out = _model("promote", MODEL, "2", "--reason", "try")
    assert code == 2 and "version 2 failed its gate" in out and "Traceback" not in out
    code, out = _model("promote", MODEL, "2", "-m", "hotfix", "--force", "--json")
    assert code == 0 and json.loads(out)["previous"] == "1"
    code, out = _model("rollback", MODEL, "-m", "clicks fell", "--json")
    assert code == 0, out
    assert json.loads(out)["version"] == "1" and registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
    code, out = _model("rollback", MODEL, "-m", "again")
    assert code == 2 and "no earlier version to roll back to" in out

    code, out = _model("history", MODEL, "--json")
    assert code == 0
    moves = json.loads(out)
    assert [(m["action"], m["version"]) for m in moves] == [
        ("promote", "1"), ("promote", "2"), ("rollback", "1")
    ]  # fmt: skip
    assert moves[0]["actor"] == "ana" and moves[2]["reason"] == "clicks fell"
    code, out = _model("history", MODEL)
    assert code == 0 and "alias moves of news" in out and "clicks fell" in out


def test_list_and_show_give_aliases_and_gate_reasons(
    tmp_path: Path,
    trained_artifact: Path,
    second_artifact: Path,
) -> None:
    registry = _registry(tmp_path, trained_artifact, second_artifact)
    registry.promote(MODEL, "1", reason="first")
    code, out = _model("list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["version"], r["aliases"], r["gate"]) for r in rows] == [
        ("1", ["champion"], "passed"), ("2", [], "failed")
    ]  # fmt: skip
    assert rows[0]["repository_version"] == "1" and rows[0]["data_version"] == "data-1"
    code, out = _model("list", MODEL)
    assert code == 0 and "champion" in out and "failed" in out
    code, out = _model("show", MODEL, "2")
    assert code == 0 and "gate failed" in out and "set by the test" in out
    code, out = _model("show", MODEL, "1", "--json")
    assert code == 0 and json.loads(out)["gate_result"]["passed"] is True
    code, out = _model("show", MODEL, "9")
    assert code == 2 and "no registered version '9' (versions: 1, 2)" in out


def test_help_tells_the_registry_from_the_repository() -> None:
    code, out = _model("--help")
    assert code == 0 and "MLflow model registry" in out and "recops models" in out
    listing = runner.invoke(app, ["models", "--help"])
    assert listing.exit_code == 0 and "repository" in listing.output
