"""``recops pipeline``: run, runs, show, resume, compile and step, with clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from recops.cli import app
from tests.pipelines.training_fixtures import TINY_MODEL, WORLD

runner = CliRunner()


def _training_config(tmp_path: Path) -> Path:
    world = ", ".join(f"{k} = {v}" for k, v in WORLD.items())
    model = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY_MODEL.items())
    path = tmp_path / "train.toml"
    path.write_text(
        f'[source]\nkind = "world"\nworld = {{ {world} }}\n\n[model]\n{model}\n\n'
        f'[evaluate]\nn_boot = 20\n\n[publish]\nrepository = "{tmp_path / "models"}"\n\n'
        f'[storage]\nartifacts = "{tmp_path / "artifacts"}"\nruns = "{tmp_path / "runs.sqlite3"}"\n'
    )
    return path


def test_run_then_list_show_and_compile_the_training_pipeline(tmp_path: Path) -> None:
    config = _training_config(tmp_path)
    first = runner.invoke(app, ["pipeline", "run", "train", "--config", str(config), "--json"])
    assert first.exit_code == 0, first.output
    record = json.loads(first.stdout)
    assert record["status"] == "succeeded" and record["executor"] == "local"
    assert (tmp_path / "models" / "two_tower" / "1" / "recops-pipeline.json").is_file()
    again = runner.invoke(app, ["pipeline", "run", "train", "--config", str(config)])
    assert again.exit_code == 0, again.output
    assert "cached" in again.stdout and "recops pipeline show" in again.stdout

    runs = ["--runs", str(tmp_path / "runs.sqlite3")]
    listed = runner.invoke(app, ["pipeline", "runs", *runs, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["run_id"] for r in rows][-1] == record["run_id"] and len(rows) == 2
    assert rows[0]["steps"]["train"] == "cached"

    shown = runner.invoke(app, ["pipeline", "show", record["run_id"][:17], *runs, "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    model = document["steps"][3]["outputs"]["output"]
    produced = document["artifacts"][model]["produced_by"]
    assert produced["step"] == "train" and produced["inputs"]["data"]
    assert document["artifacts"][model]["record"]["kind"] == "model"
    table = runner.invoke(app, ["pipeline", "show", record["run_id"], *runs, "--logs"])
    assert table.exit_code == 0 and "artifacts and lineage" in table.stdout

    out = tmp_path / "train.yaml"
    compiled = runner.invoke(
        app, ["pipeline", "compile", "train", "--target", "kfp", "--out", str(out),
              "--config", str(config), "--image", "recops:test"],
    )  # fmt: skip
    assert compiled.exit_code == 0, compiled.output
    assert "image: recops:test" in out.read_text()


def test_a_failed_run_exits_1_and_resumes(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"n": 4, "log_dir": str(tmp_path)}))
    stores = ["--runs", str(tmp_path / "runs.sqlite3"), "--artifacts", str(tmp_path / "a")]
    pipeline = "tests.pipelines.components:toy_breaking"
    failed = runner.invoke(app, ["pipeline", "run", pipeline, "--config", str(params), *stores])
    assert failed.exit_code == 1
    assert "the bug is not fixed yet" in failed.output and "recops pipeline resume" in failed.output
    run_id = failed.output.split("recops pipeline resume ")[1].split()[0]
    (tmp_path / "fixed").write_text("yes")
    resumed = runner.invoke(app, ["pipeline", "resume", run_id, stores[0], stores[1], "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["attempts"] == 2


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nepochs = -1\n")
    result = runner.invoke(app, ["pipeline", "run", "train", "--config", str(bad)])
    assert result.exit_code == 2 and "field `model.epochs`" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["pipeline", "show", "nope", "--runs", str(tmp_path / "r.db")])
    assert missing.exit_code == 2 and "no run matches 'nope'" in missing.output
    unknown = runner.invoke(app, ["pipeline", "run", "tarin"])
    assert unknown.exit_code == 2 and "unknown pipeline 'tarin'" in unknown.output


def test_step_runs_one_component_on_artifact_folders(tmp_path: Path) -> None:
    made = runner.invoke(
        app,
        ["pipeline", "step", "tests.pipelines.components:make",
         "--params", json.dumps({"n": 4, "log_dir": str(tmp_path)}),
         "--output", "output", str(tmp_path / "frame")],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    total = runner.invoke(
        app,
        ["pipeline", "step", "tests.pipelines.components:total",
         "--params", json.dumps({"log_dir": str(tmp_path)}),
         "--input", "frame", str(tmp_path / "frame"), "--output", "output", str(tmp_path / "t")],
    )  # fmt: skip
    assert total.exit_code == 0, total.output
    assert json.loads((tmp_path / "t" / "value.json").read_text())["total"] == 14.0
    wrong = runner.invoke(app, ["pipeline", "step", "tests.pipelines.components:make", "--in"])
    assert wrong.exit_code == 2 and "--input NAME PATH" in wrong.output
