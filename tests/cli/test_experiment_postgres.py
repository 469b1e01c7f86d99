"""``recops experiment`` and the controller's reads on a PostgreSQL event log, as on SQLite.

Skips, saying why, without ``RECOPS_TEST_POSTGRES_URL`` (``.ci/run`` starts a server).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from recops.cli import app
from recops.ct.training import count_events, log_position, write_snapshot
from recops.serving.eventlog.postgres import PostgresEventLog
from recops.serving.records import Assignment, Event, Exposure
from tests.cli.test_experiment_cli import CONFIG
from tests.serving.backends import postgres_server, postgres_url  # noqa: F401

runner = CliRunner()
NOW = 1_700_000_000


def _serve(url: str) -> None:
    """What a server would have logged: 40 units per arm, the treatment clicked more."""
    log = PostgresEventLog(url)
    try:
        exposures, assignments, clicks = [], [], []
        for u in range(80):
            variant = "control" if u % 2 else "pl"
            unit = f"u{u}"
            assignments.append(Assignment("ranker-v2", unit, variant, NOW))
            request = f"r{u}"
            exposures.append(
                Exposure(
                    request_id=request, timestamp=NOW + 10, unit=unit, model="two_tower",
                    version="1" if variant == "control" else "10", policy={"kind": "greedy"},
                    items=["a", "b", "c"], propensities=[1.0] * 3, scores=[0.0] * 3,
                    experiment="ranker-v2", variant=variant,
                )
            )  # fmt: skip
            if variant == "pl" or u % 4 == 1:
                context = {"request_id": request, "position": 0}
                clicks.append(Event(unit, "a", "click", 1.0, NOW + 20, context))
        log.submit_exposures(exposures, assignments).result()
        log.append(clicks)
    finally:
        log.close()


def test_the_lifecycle_and_the_analysis_on_postgresql(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    for version in ("1", "10"):
        (tmp_path / "models" / "two_tower" / version).mkdir(parents=True)
    (tmp_path / "exp.toml").write_text(CONFIG)
    where = ["--event-log", postgres_url]
    models = ["--models", str(tmp_path / "models")]
    created = runner.invoke(app, ["experiment", "create", str(tmp_path / "exp.toml"), *where,
                                  *models, "--json"])  # fmt: skip
    assert created.exit_code == 0, created.output
    started = runner.invoke(app, ["experiment", "start", "ranker-v2", *where, *models])
    assert started.exit_code == 0, started.output
    listed = runner.invoke(app, ["experiment", "list", *where, "--json"])
    assert [e["name"] for e in json.loads(listed.stdout)["experiments"]] == ["ranker-v2"]
    # Messages name the database without its password.
    shown = runner.invoke(app, ["experiment", "list", "--event-log", postgres_url])
    assert "postgresql://" in shown.output

    _serve(postgres_url)
    analysed = runner.invoke(
        app,
        [
            "experiment",
            "analyze",
            "ranker-v2",
            *where,
            "--min-units",
            "10",
            "--json",
            "--guardrail",
            "clicks/requests:decrease:0.5",
        ],
    )
    assert analysed.exit_code == 0, analysed.output
    result = json.loads(analysed.stdout)
    assert result["units"] == {"control": 40, "pl": 40}

    exported = runner.invoke(app, ["experiment", "export", "ranker-v2", *where, "--out",
                                   str(tmp_path / "x.parquet")])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert len(pd.read_parquet(tmp_path / "x.parquet")) == 80 * 3


def test_the_controller_reads_a_postgresql_log(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert log_position(postgres_url) == 0
    log = PostgresEventLog(postgres_url)
    try:
        log.append([Event(f"u{i}", "a", "click" if i % 2 else "view", 1.0, NOW + i)
                    for i in range(10)] + [Event("u1", "a", "click", 1.0, NOW + 1)])  # fmt: skip
    finally:
        log.close()
    last = log_position(postgres_url)
    assert last > 0
    assert count_events(postgres_url, 0, ("click",)) == 6
    written = write_snapshot(postgres_url, last, tmp_path / "snapshot.parquet")
    # The click sent twice is in the log once per send, in the snapshot once.
    assert (written.rows, written.duplicates) == (10, 1)
    assert len(pd.read_parquet(tmp_path / "snapshot.parquet")) == 10
