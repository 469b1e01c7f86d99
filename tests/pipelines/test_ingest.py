"""Ingest from the server's event log and from files: fingerprints make new data a cache miss."""

from __future__ import annotations

from pathlib import Path

from recops.data.world import WorldConfig, generate_world
from recops.pipelines import LocalExecutor, pipeline
from recops.pipelines.training.config import EventLogSource, FilesSource
from recops.pipelines.training.ingest import ingest, source_fingerprint
from recops.serving.eventlog import SQLiteEventLog
from recops.serving.records import Event
from tests.pipelines.training_fixtures import WORLD


@pipeline
def only_ingest(source: EventLogSource) -> None:
    ingest(source)


def _clicks():
    _, data = generate_world(WorldConfig(**WORLD))
    clicks = data.interactions[data.interactions["event"] == "click"]
    return data, [
        Event(str(r.user_id), str(r.item_id), "click", 1.0, int(r.timestamp))
        for r in clicks.itertuples()
    ]


def test_the_event_log_is_read_and_new_events_miss_the_cache(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    data, events = _clicks()
    catalog = tmp_path / "items.parquet"
    data.items.to_parquet(catalog, index=False)
    path = tmp_path / "events.sqlite3"
    log = SQLiteEventLog(path)
    log.append(events[:-10])
    source = EventLogSource(kind="event_log", path=str(path), catalog=str(catalog))
    dataset = ingest(source)
    assert len(dataset.interactions) == len(events) - 10 and len(dataset.items) == 200
    assert dataset.interactions["timestamp"].is_monotonic_increasing
    first = executor.run(only_ingest, source=source)
    assert executor.run(only_ingest, source=source).record.step("ingest").status == "cached"
    before = source_fingerprint(source)
    log.append(events[-10:])
    log.close()
    assert source_fingerprint(source) != before
    third = executor.run(only_ingest, source=source)
    assert third.record.step("ingest").status == "succeeded"
    assert len(third.value("ingest").interactions) == len(first.value("ingest").interactions) + 10


def test_files_are_read_with_their_catalog_and_hashed(tmp_path: Path) -> None:
    data, _ = _clicks()
    events = tmp_path / "events.csv"
    data.interactions[["user_id", "item_id", "event", "value", "timestamp"]].to_csv(
        events, index=False
    )
    catalog = tmp_path / "items.parquet"
    data.items.to_parquet(catalog, index=False)
    source = FilesSource(kind="files", interactions=str(events), catalog=str(catalog))
    dataset = ingest(source)
    assert len(dataset.interactions) == len(data.interactions) and dataset.name == "events"
    before = source_fingerprint(source)
    events.write_text(events.read_text() + "u1,i1,click,1.0,1704500000\n")
    assert source_fingerprint(source) != before


def test_the_slates_a_server_logged_are_read_as_impressions(tmp_path: Path) -> None:
    from recops.pipelines.training.config import SplitConfig
    from recops.pipelines.training.split import split
    from tests.pipelines.training_fixtures import exploring_log

    path = exploring_log(tmp_path / "events.sqlite3", n_requests=40)
    data = ingest(EventLogSource(kind="event_log", path=str(path)))
    shown = data.interactions[data.interactions["event"] == "impression"]
    assert len(shown) == 40 * 3  # three items per logged slate
    clicks = data.interactions[data.interactions["event"] == "click"]
    assert len(clicks) > 0 and set(clicks["item_id"]) <= set(shown["item_id"])
    made = split.fn(data, SplitConfig(quantile=0.5))
    assert made.impressions is not None
    before = shown[shown["timestamp"] < made.cutoff]
    assert made.impressions["count"].sum() == len(before) > 0
    assert set(made.impressions["item_id"]) == set(before["item_id"])
    assert made.events["event"].eq("click").all()  # impressions are never positives
    # Where training ends and the data ends, for the gate's freshness rule.
    assert made.summary["train_end"] < made.cutoff <= made.summary["data_end"]
    assert made.summary["data_end"] == made.events["timestamp"].max()
