"""``recops experiment create|list|show|start|stop|ramp`` through the real Typer app."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from recops.cli import app
from recops.cli.experiment import repository_resolver
from recops.experiments.config import ModelRef
from recops.experiments.store import ExperimentStore

runner = CliRunner()

CONFIG = """\
name = "ranker-v2"
layer = "ranking"
traffic = 0.2
control = "control"
primary_metric = "clicks/impressions"
guardrails = [{ metric = "latency_ms", direction = "increase", max_relative_change = 0.05 }]

[[variants]]
name = "control"
version = "1"

[[variants]]
name = "pl"
alias = "latest"
policy = { kind = "plackett_luce", temperature = 0.5 }
"""


@pytest.fixture
def env(tmp_path):
    for version in ("1", "2", "10"):
        (tmp_path / "models" / "two_tower" / version).mkdir(parents=True)
    (tmp_path / "exp.toml").write_text(CONFIG)
    return tmp_path


def _run(env, *args: str, models: bool = False):
    options = ["--event-log", str(env / "events.sqlite3")]
    if models:
        options += ["--models", str(env / "models")]
    return runner.invoke(app, ["experiment", *args, *options])


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_lifecycle_in_json(env):
    created = _json(_run(env, "create", str(env / "exp.toml"), "--json", models=True))
    assert created["status"] == "draft" and created["segment"] == {"start": 0, "size": 2000}
    assert created["models"]["pl"] == {"model": "two_tower", "version": "10"}  # latest
    started = _json(_run(env, "start", "ranker-v2", "--actor", "ana", "--json", models=True))
    assert started["status"] == started["phase"] == "running"
    ramped = _json(_run(env, "ramp", "ranker-v2", "--traffic", "0.5", "--json"))
    assert ramped["traffic"] == 0.5 and ramped["segment"]["size"] == 5000
    listed = _json(_run(env, "list", "--json"))
    assert [e["name"] for e in listed["experiments"]] == ["ranker-v2"]
    shown = _json(_run(env, "show", "ranker-v2", "--json"))
    assert shown["logged"] == {"exposures": 0, "assignments": 0}
    assert [c["action"] for c in shown["changes"]] == ["create", "start", "ramp"]
    assert shown["changes"][1]["actor"] == "ana"
    assert shown["config"]["variants"][1]["policy"]["temperature"] == 0.5
    stopped = _json(_run(env, "stop", "ranker-v2", "--json"))
    assert stopped["status"] == "stopped" and stopped["stopped_at"] is not None


def test_tables_for_people(env):
    result = _run(env, "create", str(env / "exp.toml"), models=True)
    assert result.exit_code == 0, result.output
    assert "created" in result.output and "ranking (buckets 0-1999)" in result.output
    result = _run(env, "list")
    assert "ranker-v2" in result.output and "draft" in result.output
    result = runner.invoke(
        app,
        ["experiment", "show", "ranker-v2", "--event-log", str(env / "events.sqlite3")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    for text in ("variants", "alias latest", "plackett_luce(", "changes", "create", "50.0%"):
        assert text in result.output


def test_a_bad_config_exits_2_naming_file_line_and_field(env):
    (env / "bad.toml").write_text(CONFIG.replace('version = "1"', 'version = "1"\nweight = 0'))
    result = _run(env, "create", str(env / "bad.toml"), models=True)
    assert result.exit_code == 2
    assert "bad.toml, line 11, field 'variants[0].weight': Input should be greater than 0" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_an_unknown_version_is_refused_listing_the_versions(env):
    (env / "v.toml").write_text(CONFIG.replace('version = "1"', 'version = "7"'))
    result = _run(env, "create", str(env / "v.toml"), models=True)
    assert result.exit_code == 2
    assert (
        "line 10, field 'variants[0].version': no version '7' of model 'two_tower' in "
        in result.output
    )
    assert "(versions: 1, 2, 10)" in result.output


def test_an_unknown_alias_and_a_missing_repository_are_refused(env):
    (env / "a.toml").write_text(CONFIG.replace('alias = "latest"', 'alias = "champion"'))
    result = _run(env, "create", str(env / "a.toml"), models=True)
    assert result.exit_code == 2 and "unknown alias 'champion'" in result.output
    result = runner.invoke(
        app,
        ["experiment", "create", str(env / "exp.toml"), "--models", str(env / "nope")],
    )
    assert result.exit_code == 2 and "is not a folder (see --models)" in result.output


def test_overlap_in_a_layer_exits_2_with_what_is_free(env):
    (env / "big.toml").write_text(
        CONFIG.replace('name = "ranker-v2"', 'name = "big"').replace("0.2", "0.9")
    )
    assert _run(env, "create", str(env / "exp.toml"), models=True).exit_code == 0
    result = _run(env, "create", str(env / "big.toml"), models=True)
    assert result.exit_code == 2
    assert "layer 'ranking' has no room for 'big'" in result.output
    assert "0.8 is free" in result.output and "held by ranker-v2 (0.2, draft)" in result.output


def test_ramp_down_after_exposures_says_to_stop_instead(env):
    _run(env, "create", str(env / "exp.toml"), models=True)
    _run(env, "start", "ranker-v2", models=True)
    with sqlite3.connect(env / "events.sqlite3") as conn:
        conn.execute(
            "CREATE TABLE exposures (id INTEGER PRIMARY KEY, request_id TEXT, timestamp INTEGER,"
            " unit TEXT, experiment TEXT, variant TEXT)"
        )
        conn.execute("INSERT INTO exposures VALUES (1, 'r', 1, 'u', 'ranker-v2', 'pl')")
    result = _run(env, "ramp", "ranker-v2", "--traffic", "0.1")
    assert result.exit_code == 2
    assert "Stop the experiment instead (recops experiment stop)" in result.output


def test_commands_on_a_missing_store_or_name_exit_2(env):
    result = _run(env, "show", "x")
    assert result.exit_code == 2 and "does not exist: no experiment has been created" in (
        result.output
    )
    assert not (env / "events.sqlite3").exists()  # reading creates nothing
    assert "no experiments in" in _run(env, "list").output
    _run(env, "create", str(env / "exp.toml"), models=True)
    result = _run(env, "start", "x", models=True)
    assert result.exit_code == 2 and "no experiment 'x'" in result.output


def test_the_event_log_comes_from_the_environment_like_serve(env, monkeypatch):
    monkeypatch.setenv("RECOPS_EVENT_LOG_PATH", str(env / "from-env.sqlite3"))
    monkeypatch.setenv("RECOPS_MODEL_REPOSITORY", str(env / "models"))
    result = runner.invoke(app, ["experiment", "create", str(env / "exp.toml")])
    assert result.exit_code == 0, result.output
    with ExperimentStore(env / "from-env.sqlite3") as store:
        assert store.get("ranker-v2").status == "draft"


def test_every_command_has_help():
    result = runner.invoke(app, ["experiment", "--help"])
    assert result.exit_code == 0
    for command in ("create", "list", "show", "start", "stop", "ramp"):
        assert command in result.output
        assert runner.invoke(app, ["experiment", command, "--help"]).exit_code == 0


def test_repository_resolver(env):
    resolve = repository_resolver(env / "models")
    assert resolve(None, "2", None) == ModelRef("two_tower", "2")
    assert resolve("two_tower", None, "latest") == ModelRef("two_tower", "10")
    with pytest.raises(LookupError, match="no version '3'"):
        resolve(None, "3", None)
    (env / "models" / "other" / "1").mkdir(parents=True)
    with pytest.raises(LookupError, match="holds 2 models"):
        resolve(None, "1", None)
    with pytest.raises(ValueError, match="model name must be"):
        resolve("../x", "1", None)
