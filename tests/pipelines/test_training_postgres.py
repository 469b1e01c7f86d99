"""The training pipeline on a PostgreSQL event log: ingest and OPE read it as they read SQLite.

Against the real server of ``.ci/run`` (``RECOPS_TEST_POSTGRES_URL``); skipped, saying
why, where there is none.
"""

from __future__ import annotations

from pathlib import Path

from recops.data.world import WorldConfig, generate_world
from recops.pipelines import LocalExecutor
from recops.pipelines.training import training_pipeline
from recops.pipelines.training.ingest import source_fingerprint
from recops.serving.eventlog.postgres import PostgresEventLog
from recops.serving.records import Event
from tests.pipelines.training_fixtures import WORLD, exploring_log, tiny_config
from tests.serving.backends import postgres_server, postgres_url  # noqa: F401  (fixtures)


def test_the_pipeline_trains_and_evaluates_on_a_postgresql_log(
    executor: LocalExecutor,
    tmp_path: Path,
    postgres_url: str,  # noqa: F811
) -> None:
    _, data = generate_world(WorldConfig(**WORLD))
    catalog = tmp_path / "items.parquet"
    data.items.to_parquet(catalog, index=False)
    clicks = data.interactions[data.interactions["event"] == "click"]
    log = PostgresEventLog(postgres_url)
    log.append(
        [
            Event(str(r.user_id), str(r.item_id), "click", 1.0, int(r.timestamp))
            for r in clicks.itertuples()
        ]
    )
    exploring_log(tmp_path / "unused.sqlite3", log=log)  # closes the log
    assert not (tmp_path / "unused.sqlite3").exists()
    source = {"kind": "event_log", "path": postgres_url, "catalog": str(catalog)}
    config = tiny_config(tmp_path, source=source, ope={"min_requests": 50})
    assert config.exposure_log() == postgres_url
    result = executor.run(training_pipeline, config=config)
    statuses = {s.name: s.status for s in result.record.steps}
    assert set(statuses.values()) == {"succeeded"}, statuses
    ingested = result.value("ingest")
    # The world's clicks and the exploring log's answering clicks, nothing else.
    assert len(ingested.interactions) >= len(clicks)
    ope = result.value("off_policy")
    assert ope.evaluated and ope.requests == 150
    assert result.value("publish").version == "1"
    # New events are a cache miss, as with SQLite.
    before = source_fingerprint(config.source)
    more = PostgresEventLog(postgres_url)
    more.append([Event("u-new", str(data.items["item_id"].iloc[0]), "click", 1.0, 2_000_000_000)])
    more.close()
    assert source_fingerprint(config.source) != before
