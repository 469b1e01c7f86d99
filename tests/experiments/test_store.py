"""The experiment store: lifecycle rules, layer segments, the audit log, change polling."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

import pytest

from recops.experiments.assignment import Assigner, Segment
from recops.experiments.config import ExperimentConfig, ExperimentConfigError, ModelRef
from recops.experiments.store import (
    ExperimentNotFoundError,
    ExperimentStore,
    ExperimentStoreError,
    default_actor,
)

NOW = datetime(2026, 12, 2, tzinfo=UTC).timestamp()

# The event log's tables as in DESIGN.md (created by the server, not by the store).
EXPOSURES = """CREATE TABLE exposures (id INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE,
    timestamp INTEGER NOT NULL, unit TEXT NOT NULL, experiment TEXT, variant TEXT,
    model TEXT NOT NULL, version TEXT NOT NULL, policy TEXT NOT NULL, items TEXT NOT NULL,
    propensities TEXT NOT NULL, scores TEXT NOT NULL, sources TEXT, context TEXT)"""
ASSIGNMENTS = """CREATE TABLE assignments (experiment TEXT NOT NULL, unit TEXT NOT NULL,
    variant TEXT NOT NULL, timestamp INTEGER NOT NULL, PRIMARY KEY (experiment, unit))"""


class Repo:
    """A resolver over an in-memory repository whose versions a test can add."""

    def __init__(self) -> None:
        self.versions = {"two_tower": ["1", "2"]}

    def __call__(self, model: str | None, version: str | None, alias: str | None) -> ModelRef:
        name = model or "two_tower"
        if alias is not None:
            if alias != "latest":
                raise LookupError(f"unknown alias {alias!r} (known: latest)")
            return ModelRef(name, self.versions[name][-1])
        if version not in self.versions.get(name, []):
            raise LookupError(f"no version {version!r} of model {name!r}")
        return ModelRef(name, str(version))


def _config(name: str = "exp", **fields: object) -> ExperimentConfig:
    values: dict[str, object] = {
        "name": name,
        "layer": "ranking",
        "traffic": 0.2,
        "control": "control",
        "primary_metric": "clicks/impressions",
        "variants": [
            {"name": "control", "version": "1"},
            {"name": "treatment", "alias": "latest", "policy": {"kind": "plackett_luce"}},
        ],
    }
    values.update(fields)
    return ExperimentConfig.model_validate(values)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "events.sqlite3"


@pytest.fixture
def store(path):
    with ExperimentStore(path) as s:
        yield s


@pytest.fixture
def repo():
    return Repo()


def _log_exposure(path, experiment: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(EXPOSURES)
        conn.execute(
            "INSERT INTO exposures (request_id, timestamp, unit, experiment, variant, model, "
            "version, policy, items, propensities, scores) "
            "VALUES ('r1', 1, 'u1', ?, 'control', 'two_tower', '1', '{}', '[]', '[]', '[]')",
            (experiment,),
        )


def test_create_stores_a_draft_reserves_a_segment_and_audits(store, repo, path):
    record = store.create(_config(), repo, actor="ana", source="exp.toml", now=NOW)
    assert record.status == "draft" and record.phase() == "draft"
    assert record.segment == Segment(0, 2000)
    assert record.models == {
        "control": ModelRef("two_tower", "1"),
        "treatment": ModelRef("two_tower", "2"),
    }
    assert store.get("exp") == record
    (change,) = store.changes("exp")
    assert (change.action, change.actor, change.timestamp) == ("create", "ana", int(NOW))
    assert change.detail["segment"] == [0, 2000]
    assert change.detail["config"]["traffic"] == 0.2
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_segments_are_first_fit_and_overlap_is_refused_naming_the_others(store, repo):
    store.create(_config("a", traffic=0.3), repo, now=NOW)
    store.create(_config("b", traffic=0.5), repo, now=NOW)
    assert store.get("b").segment == Segment(3000, 5000)
    store.create(_config("other-layer", layer="ui", traffic=1.0, salt="o"), repo, now=NOW)
    with pytest.raises(ExperimentStoreError) as info:
        store.create(_config("c", traffic=0.3), repo, now=NOW)
    assert str(info.value) == (
        "layer 'ranking' has no room for 'c', which needs 0.3 of its units: 0.2 is free (the "
        "largest free run is 0.2); it is held by a (0.3, draft), b (0.5, draft). Lower "
        "`traffic`/`max_traffic`, stop one of them, or use another layer"
    )
    assert [r.name for r in store.experiments()] == ["a", "b", "other-layer"]
    assert len(store.changes()) == 3  # the refusal wrote nothing
    store.stop("a", now=NOW)
    assert store.create(_config("c", traffic=0.3), repo, now=NOW).segment == Segment(0, 3000)


def test_max_traffic_reserves_room_to_ramp(store, repo):
    store.create(_config("a", traffic=0.1, max_traffic=0.5), repo, now=NOW)
    assert store.create(_config("b", traffic=0.1), repo, now=NOW).segment == Segment(5000, 1000)
    assert store.ramp("a", 0.5, now=NOW).segment == Segment(0, 5000)


def test_a_layer_randomises_one_kind_of_unit(store, repo):
    store.create(_config("a"), repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match="layer 'ranking' randomises user_id"):
        store.create(_config("b", unit="anonymous_id"), repo, now=NOW)


def test_one_salt_in_two_layers_is_refused(store, repo):
    store.create(_config("a", salt="shared"), repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match="salt 'shared' is used by experiment 'a'"):
        store.create(_config("b", layer="ui", salt="shared"), repo, now=NOW)
    # In the same layer the two are exclusive anyway: a re-run may keep its split.
    store.create(_config("c", salt="shared"), repo, now=NOW)


def test_names_are_unique_and_only_drafts_can_be_replaced(store, repo):
    store.create(_config(), repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match=r"already exists \(draft\).*--replace"):
        store.create(_config(), repo, now=NOW)
    replaced = store.create(_config(traffic=0.4), repo, replace=True, now=NOW)
    assert replaced.segment == Segment(0, 4000)
    assert [c.action for c in store.changes("exp")] == ["create", "replace"]
    store.start("exp", repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match="a started experiment cannot be replaced"):
        store.create(_config(), repo, replace=True, now=NOW)


def test_unknown_versions_are_refused_at_create(store, repo):
    config = _config(variants=[{"name": "control", "version": "9"}, {"name": "t", "version": "1"}])
    with pytest.raises(ExperimentConfigError, match=r"field 'variants\[0\]\.version': no version"):
        store.create(config, repo, now=NOW)
    assert store.experiments() == []


def test_start_pins_the_versions_aliases_resolve_to_now(store, repo):
    store.create(_config(), repo, now=NOW)
    repo.versions["two_tower"].append("3")
    started = store.start("exp", repo, actor="bo", now=NOW + 60)
    assert started.status == "running" and started.started_at == int(NOW + 60)
    assert started.models["treatment"] == ModelRef("two_tower", "3")
    assert store.get("exp") == started
    change = store.changes("exp")[-1]
    assert (change.action, change.actor) == ("start", "bo")
    assert change.detail["models"]["treatment"] == ["two_tower", "3"]
    assert change.detail["models_at_create"]["treatment"] == ["two_tower", "2"]
    with pytest.raises(ExperimentStoreError, match="'exp' is already running"):
        store.start("exp", repo, now=NOW)


def test_a_stopped_experiment_never_restarts_and_releases_nothing_logged(store, repo, path):
    store.create(_config(), repo, now=NOW)
    store.start("exp", repo, now=NOW)
    _log_exposure(path, "exp")
    stopped = store.stop("exp", actor="cy", now=NOW + 5)
    assert (stopped.status, stopped.stopped_at) == ("stopped", int(NOW + 5))
    assert store.logged("exp") == {"exposures": 1, "assignments": 0}
    with pytest.raises(ExperimentStoreError, match=r"cannot restart.*create a new experiment"):
        store.start("exp", repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match="already stopped"):
        store.stop("exp", now=NOW)
    with pytest.raises(ExperimentStoreError, match="is stopped: it cannot be ramped"):
        store.ramp("exp", 0.5, now=NOW)
    assert [c.action for c in store.changes("exp")] == ["create", "start", "stop"]


def test_start_after_the_stop_time_is_refused(store, repo):
    stop = datetime(2026, 12, 1, tzinfo=UTC)
    store.create(_config(stop=stop), repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match="stop time 2026-12-01T00:00:00\\+00:00"):
        store.start("exp", repo, now=NOW)


def test_ramp_up_keeps_every_unit_where_it_was(store, repo):
    store.create(_config(traffic=0.1), repo, now=NOW)
    store.start("exp", repo, now=NOW)
    before = Assigner(store.running(), now=NOW)
    ramped = store.ramp("exp", 0.6, actor="di", now=NOW)
    assert ramped.config.traffic == 0.6 and ramped.segment == Segment(0, 6000)
    after = Assigner(store.running(), now=NOW)
    units = [f"u{i}" for i in range(3000)]
    kept = [u for u in units if before.assign(u)]
    assert kept and all(after.assign(u) == before.assign(u) for u in kept)
    assert sum(bool(after.assign(u)) for u in units) > 4 * len(kept)
    change = store.changes("exp")[-1]
    assert (change.action, change.detail["traffic"]) == ("ramp", [0.1, 0.6])


def test_ramp_grows_only_into_free_buckets(store, repo):
    store.create(_config("a", traffic=0.2), repo, now=NOW)
    store.create(_config("b", traffic=0.2), repo, now=NOW)
    with pytest.raises(ExperimentStoreError) as info:
        store.ramp("a", 0.3, now=NOW)
    assert "the most it can ramp to is 0.2 (asked 0.3)" in str(info.value)
    assert "up to experiment 'b'" in str(info.value)
    assert store.ramp("b", 0.8, now=NOW).segment == Segment(2000, 8000)
    with pytest.raises(ExperimentStoreError, match=r"the most it can ramp to is 0\.8"):
        store.ramp("b", 0.9, now=NOW)


def test_ramp_down_is_refused_once_anything_is_logged(store, repo, path):
    store.create(_config(traffic=0.5), repo, now=NOW)
    store.start("exp", repo, now=NOW)
    assert store.ramp("exp", 0.3, now=NOW).config.traffic == 0.3  # nothing logged yet
    _log_exposure(path, "other")  # another experiment's exposure does not count
    assert store.ramp("exp", 0.2, now=NOW).config.traffic == 0.2
    _log_exposure_row(path, "exp")
    with pytest.raises(ExperimentStoreError) as info:
        store.ramp("exp", 0.1, now=NOW)
    assert str(info.value) == (
        "experiment 'exp' has logged 1 exposures and 0 assignments: lowering traffic from 0.2 "
        "to 0.1 would take exposed units out of it. Stop the experiment instead "
        "(recops experiment stop)"
    )
    assert store.get("exp").config.traffic == 0.2
    assert store.ramp("exp", 0.4, now=NOW).config.traffic == 0.4  # up is always fine


def _log_exposure_row(path, experiment: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO exposures (request_id, timestamp, unit, experiment, variant, model, "
            "version, policy, items, propensities, scores) "
            "VALUES ('r2', 1, 'u1', ?, 'control', 'two_tower', '1', '{}', '[]', '[]', '[]')",
            (experiment,),
        )


def test_ramp_down_is_refused_once_an_assignment_is_logged(store, repo, path):
    store.create(_config(traffic=0.5), repo, now=NOW)
    with sqlite3.connect(path) as conn:
        conn.execute(ASSIGNMENTS)
        conn.execute("INSERT INTO assignments VALUES ('exp', 'u1', 'control', 1)")
    with pytest.raises(ExperimentStoreError, match="0 exposures and 1 assignments"):
        store.ramp("exp", 0.1, now=NOW)


def test_ramp_checks_the_share_and_a_same_traffic_ramp_changes_nothing(store, repo):
    store.create(_config(), repo, now=NOW)
    with pytest.raises(ExperimentStoreError, match=r"traffic must be a share in \(0, 1\]"):
        store.ramp("exp", 1.5, now=NOW)
    assert store.ramp("exp", 0.2, now=NOW) == store.get("exp")
    assert len(store.changes("exp")) == 1


def test_running_is_what_the_assigner_needs(store, repo):
    store.create(_config("a"), repo, now=NOW)
    store.create(_config("b", layer="ui", salt="b"), repo, now=NOW)
    store.start("a", repo, now=NOW)
    (record,) = store.running()
    assert record.name == "a" and record.segment == Segment(0, 2000)
    assert record.models["treatment"] == ModelRef("two_tower", "2")
    assigner = Assigner(store.running(), now=NOW)
    assert set(assigner.experiments) == {"a"}
    assert record.to_dict(NOW)["phase"] == "running"


def test_phases_follow_the_window(store, repo):
    start = datetime(2026, 12, 10, tzinfo=UTC)
    stop = datetime(2026, 12, 20, tzinfo=UTC)
    store.create(_config(start=start, stop=stop), repo, now=NOW)
    record = store.start("exp", repo, now=NOW)
    assert record.phase(NOW) == "scheduled"
    assert record.phase(start.timestamp()) == "running"
    assert record.phase(stop.timestamp()) == "ended"


def test_changed_sees_other_processes_but_not_the_event_log(path, repo):
    server = ExperimentStore(path)
    admin = ExperimentStore(path)
    try:
        assert server.changed()  # the first call always reports a change
        assert not server.changed()
        admin.create(_config(), repo, now=NOW)
        assert server.changed() and not server.changed()
        assert server.version() == admin.version() == 1
        with sqlite3.connect(path) as conn:  # the event log commits all the time
            conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY)")
            conn.execute("INSERT INTO events VALUES (1)")
        assert not server.changed()
        server.start("exp", repo, now=NOW)  # its own commit
        assert server.changed() and not server.changed()
    finally:
        server.close()
        admin.close()


def test_the_audit_log_is_append_only(store, repo, path):
    store.create(_config(), repo, now=NOW)
    with sqlite3.connect(path) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE experiment_changes SET actor = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM experiment_changes")


def test_concurrent_creates_never_share_buckets(path, repo):
    stores = [ExperimentStore(path) for _ in range(4)]
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


def test_the_store_shares_the_file_with_the_event_log(path, repo):
    from recops.serving.eventlog import Event, SQLiteEventLog

    log = SQLiteEventLog(path)
    try:
        with ExperimentStore(path) as store:
            store.create(_config(), repo, now=NOW)
            assert log.append([Event("u", "i", "click", 1.0, 1)]) == 1
            store.start("exp", repo, now=NOW)
            assert log.count() == 1 and store.get("exp").status == "running"
    finally:
        log.close()


def test_unknown_names_list_the_known_ones(store, repo):
    store.create(_config("a"), repo, now=NOW)
    with pytest.raises(ExperimentNotFoundError, match=r"no experiment 'b' in .* \(known: a\)"):
        store.get("b")
    with pytest.raises(ExperimentNotFoundError):
        store.stop("b")


def test_logged_counts_zero_before_the_event_log_creates_its_tables(store, repo):
    store.create(_config(), repo, now=NOW)
    assert store.logged("exp") == {"exposures": 0, "assignments": 0}


def test_the_default_actor_is_the_os_user(store, repo, monkeypatch):
    monkeypatch.setenv("USER", "os-user")
    monkeypatch.setenv("LOGNAME", "os-user")
    assert default_actor() == "os-user"
    store.create(_config(), repo, now=NOW)
    assert store.changes()[0].actor == "os-user"


def test_the_store_reopens_what_it_wrote(path, repo):
    with ExperimentStore(path) as store:
        created = store.create(_config(type="interleaving"), repo, now=NOW)
    with ExperimentStore(path) as again:
        assert again.get("exp") == created
