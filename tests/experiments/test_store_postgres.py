"""The experiment store on PostgreSQL: the SQLite store's rules, and what sharing a server takes.

The tests of ``test_store.py`` that need only a store run here again on a
PostgreSQL store (imported, with this module's ``store`` fixture); the ones that
reach the SQLite file directly have their PostgreSQL counterparts below. They skip,
saying why, without ``RECOPS_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg")

from recops.experiments.store import ExperimentStore, ExperimentStoreError  # noqa: E402
from recops.experiments.store_postgres import (  # noqa: E402
    PostgresExperimentStore,
    open_experiment_store,
)
from recops.serving.eventlog import Assignment, Event  # noqa: E402
from tests.experiments.test_store import (  # noqa: E402, F401  (run again here, on PostgreSQL)
    NOW,
    _config,
    repo,
    test_a_layer_randomises_one_kind_of_unit,
    test_max_traffic_reserves_room_to_ramp,
    test_names_are_unique_and_only_drafts_can_be_replaced,
    test_one_salt_in_two_layers_is_refused,
    test_phases_follow_the_window,
    test_ramp_checks_the_share_and_a_same_traffic_ramp_changes_nothing,
    test_ramp_grows_only_into_free_buckets,
    test_ramp_up_keeps_every_unit_where_it_was,
    test_running_is_what_the_assigner_needs,
    test_segments_are_first_fit_and_overlap_is_refused_naming_the_others,
    test_start_after_the_stop_time_is_refused,
    test_start_pins_the_versions_aliases_resolve_to_now,
    test_the_default_actor_is_the_os_user,
    test_unknown_versions_are_refused_at_create,
)
from tests.serving.backends import postgres_server, postgres_url  # noqa: E402, F401  (fixtures)


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresExperimentStore]:  # noqa: F811
    with PostgresExperimentStore(postgres_url) as s:
        yield s


def test_the_url_picks_the_backend(postgres_url: str, tmp_path) -> None:  # noqa: F811
    pg = open_experiment_store(postgres_url)
    lite = open_experiment_store(tmp_path / "events.sqlite3")
    try:
        assert isinstance(pg, PostgresExperimentStore)
        assert type(lite) is ExperimentStore
    finally:
        pg.close()
        lite.close()


def test_unknown_names_are_reported_without_the_password(store, repo) -> None:  # noqa: F811
    store.create(_config("a"), repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match=r"no experiment 'b' in postgresql://\S+ \("):
        store.get("b")
    assert store.url.startswith("postgresql://")


def test_the_audit_log_is_append_only(store, postgres_url: str, repo) -> None:  # noqa: F811
    store.create(_config(), repo, now=NOW)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE experiment_changes SET actor = 'mallory'")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM experiment_changes")
    assert [c.action for c in store.changes()] == ["create"]


def test_changed_sees_other_processes(postgres_url: str, repo) -> None:  # noqa: F811
    server = PostgresExperimentStore(postgres_url)
    admin = PostgresExperimentStore(postgres_url)
    try:
        assert server.changed()  # the first call always reports a change
        assert not server.changed()
        admin.create(_config(), repo, now=NOW)
        assert server.changed() and not server.changed()
        assert server.version() == admin.version() == 1
        server.start("exp", repo, now=NOW)  # its own commit
        assert server.changed() and not server.changed()
    finally:
        server.close()
        admin.close()


def test_concurrent_creates_never_share_buckets(postgres_url: str, repo) -> None:  # noqa: F811
    stores = [PostgresExperimentStore(postgres_url) for _ in range(4)]
    results: list[object] = []

    def create(i: int) -> None:
        try:
            results.append(stores[i].create(_config(f"e{i}", traffic=0.4), repo, now=NOW))
        except ExperimentStoreError as exc:
            results.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = stores[0].experiments()
    assert len(made) == 2 and not made[0].segment.overlaps(made[1].segment)
    assert sum(isinstance(r, ExperimentStoreError) for r in results) == 2
    for s in stores:
        s.close()


def test_the_store_shares_the_database_with_the_event_log(
    store,
    postgres_url: str,  # noqa: F811
    repo,  # noqa: F811
) -> None:
    from recops.serving.eventlog.postgres import PostgresEventLog

    assert store.logged("exp") == {"exposures": 0, "assignments": 0}  # no log tables yet
    store.create(_config(), repo, now=NOW)
    store.start("exp", repo, now=NOW)
    log = PostgresEventLog(postgres_url)
    try:
        assert log.append([Event("u", "i", "click", 1.0, 1)]) == 1
        log.submit_exposures([], [Assignment("exp", "u1", "control", 1)]).result()
        assert store.logged("exp") == {"exposures": 0, "assignments": 1}
        # Down is refused once anything is logged, as with SQLite.
        with pytest.raises(ExperimentStoreError, match="1 assignments"):
            store.ramp("exp", 0.1, now=NOW)
        assert store.ramp("exp", 0.3, now=NOW).config.traffic == 0.3
    finally:
        log.close()


def test_the_store_reopens_what_it_wrote(postgres_url: str, repo) -> None:  # noqa: F811
    with PostgresExperimentStore(postgres_url) as store:
        created = store.create(_config(type="interleaving"), repo, now=NOW)
        store.stop("exp", now=NOW)
    with PostgresExperimentStore(postgres_url) as again:
        assert again.get("exp").status == "stopped"
        assert again.get("exp").config == created.config
        assert [c.action for c in again.changes("exp")] == ["create", "stop"]


def test_the_store_reconnects_after_its_connection_breaks(
    store,
    postgres_url: str,  # noqa: F811
    repo,  # noqa: F811
) -> None:
    store.create(_config(), repo, now=NOW)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (store._db.conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):
        store.get("exp")  # the operation that meets the break fails ...
    assert store.start("exp", repo, now=NOW).status == "running"  # ... the next one works
