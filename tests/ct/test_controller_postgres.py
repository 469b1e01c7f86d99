"""The controller beside a PostgreSQL event log: its state in the log's database, no file.

Skips, saying why, without ``RECOPS_TEST_POSTGRES_URL`` (``.ci/run`` starts a server).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from recops.ct import Controller, ControllerBusyError, CTConfig
from recops.ct.state_postgres import PostgresStateStore
from recops.data.world import WorldConfig, generate_world
from recops.experiments.store_postgres import PostgresExperimentStore
from recops.monitoring.world import replay_world
from tests.ct.conftest import MODEL, Site, add_clicks, ct_document, serve
from tests.pipelines.training_fixtures import WORLD
from tests.serving.backends import postgres_server, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture
def pg_site(site: Site, postgres_url: str) -> Site:  # noqa: F811
    """The tiny world's log written to PostgreSQL instead (the catalog stays a file)."""
    from recops.serving.eventlog.postgres import PostgresEventLog

    world, data = generate_world(WorldConfig(**WORLD))
    log = PostgresEventLog(postgres_url)
    try:
        replay_world(world, data.interactions, log, model=MODEL)
    finally:
        log.close()
    return replace(site, event_log=postgres_url)


def _config(site: Site, tracking_uri: str, folder: Path) -> CTConfig:
    document = ct_document(site, tracking_uri, snapshots=str(folder / "snapshots"))
    return CTConfig.model_validate(document)


def test_a_step_keeps_its_state_in_the_event_logs_database(
    pg_site: Site,
    tracking_uri: str,
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = _config(pg_site, tracking_uri, tmp_path)
    assert config.state_target == postgres_url
    with Controller(config) as controller, Controller(config) as other:
        assert isinstance(controller.store, PostgresStateStore)
        # A second controller of the same state is refused while the first holds the lock.
        with controller.store.exclusive(), pytest.raises(ControllerBusyError):
            other.step(pg_site.end)
        decisions = controller.step(pg_site.end)
        assert [d.action for d in decisions] == ["train", "promote", "done"]
        assert decisions[0].detail["snapshot_rows"] > 0
        assert controller.registry.champion(MODEL).version == "1"  # type: ignore[union-attr]
        # The other controller sees the same state, and has nothing to do.
        assert other.state.state == "idle" and other.state.champion == "1"
        assert other.step(pg_site.end + 60) == []
        assert [d.action for d in other.store.decisions(MODEL)] == ["train", "promote", "done"]
    assert not list(tmp_path.rglob("recops-ct.sqlite3"))
    assert (tmp_path / "snapshots" / f"{MODEL}-cycle-1.parquet").is_file()


def test_a_whole_cycle_tests_ships_and_watches_in_postgresql(
    pg_site: Site,
    tracking_uri: str,
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Bootstrap, a challenger A/B-tested on the server's PostgreSQL log, shipped, watched."""
    with Controller(_config(pg_site, tracking_uri, tmp_path)) as controller:
        assert [d.action for d in controller.step(pg_site.end)] == ["train", "promote", "done"]
        add_clicks(pg_site, pg_site.end + 60, 80)
        now = pg_site.end + 600
        decisions = controller.train_now(now, reason="new data")
        assert [d.action for d in decisions] == ["train", "gate_passed", "test_started"]
        with PostgresExperimentStore(postgres_url) as store:
            assert store.get("ct-two_tower-2").status == "running"
        serve(pg_site, now + 60, {"champion": 0.1, "challenger": 0.4}, units=400)
        assert [d.action for d in controller.step(now + 3_600)] == ["promote"]
        assert controller.registry.champion(MODEL).version == "2"  # type: ignore[union-attr]
        serve(pg_site, now + 3_700, {"previous": 0.3, "champion": 0.3}, units=400, seed=3)
        assert [d.action for d in controller.step(now + 7_300)] == ["watch_passed"]
        state = controller.state
        assert (state.state, state.champion, state.cycle) == ("idle", "2", None)
        assert controller.store.cycle(2).outcome == "promoted"
    # Everything the controller decided is in the log's database, nowhere else.
    with PostgresStateStore(postgres_url) as again:
        assert [d.action for d in again.decisions(MODEL)] == [
            "train", "promote", "done", "train", "gate_passed", "test_started", "promote",
            "watch_passed",
        ]  # fmt: skip
