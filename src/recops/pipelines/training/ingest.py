"""Step ``ingest``: the events and catalog to train on, as a :class:`~recops.data.schema.Dataset`.

From the built-in world, a public dataset, your own files, or the server's event
log (every event users sent, e.g. clicks, and an ``impression`` per item of every
slate it logged). The step's fingerprint is what it reads
from outside — the files' sha256, the event log's last event id — so new data is a
cache miss while unchanged data is a hit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from recops.data.schema import (
    EVENT,
    IMPRESSION,
    INTERACTION_COLUMNS,
    ITEM_ID,
    TIMESTAMP,
    USER_ID,
    VALUE,
    Dataset,
    empty_items,
)
from recops.pipelines.component import component
from recops.pipelines.training.config import (
    DatasetSource,
    EventLogSource,
    FilesSource,
    Source,
    WorldSource,
)

if TYPE_CHECKING:
    from recops.serving.eventlog import EventLog

#: Events read from the log per page.
_PAGE = 50_000


def _file_hash(path: str | None) -> str:
    if path is None:
        return "-"
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {file}")
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_fingerprint(source: Source) -> str | None:
    """What ``ingest`` reads from outside its parameters (None: the parameters say all)."""
    if isinstance(source, FilesSource):
        return f"{_file_hash(source.interactions)}:{_file_hash(source.catalog)}"
    if isinstance(source, EventLogSource):
        from recops.serving.backends import event_log_at

        log = event_log_at(source.path)
        try:
            return f"events:{log.count()}:{log.last_id()}:{_file_hash(source.catalog)}"
        finally:
            log.close()
    return None


Row = tuple[str, str, str, float, int]


def impression_rows(log: EventLog, until: int | None = None) -> list[Row]:
    """One ``impression`` row per item of every slate the server logged (its exposures).

    The unit served (a user id or an anonymous id) is the row's user; ``until``
    keeps the slates served before it (unix seconds). Impressions tell a learner
    what was *shown*, so that clicks can be read against exposure (the two-tower's
    ``exposure_debias``).
    """
    rows: list[Row] = []
    after = 0
    while page := log.read_exposures(after, _PAGE):
        after = page[-1][0]
        for _, x in page:
            if until is None or x.timestamp < until:
                rows.extend((x.unit, item, IMPRESSION, 1.0, x.timestamp) for item in x.items)
    return rows


def read_event_log(path: str | Path) -> pd.DataFrame:
    """Every event of a server's event log (a SQLite file or a ``postgresql://`` URL).

    With one ``impression`` row per item of every logged slate (:func:`impression_rows`).
    """
    from recops.serving.backends import event_log_at

    log = event_log_at(path)
    rows: list[Row] = []
    try:
        after = 0
        while page := log.read(after, _PAGE):
            after = page[-1][0]
            rows.extend((e.user_id, e.item_id, e.event, e.value, e.timestamp) for _, e in page)
        rows.extend(impression_rows(log))
    finally:
        log.close()
    frame = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS))
    return frame.astype({USER_ID: object, ITEM_ID: object, EVENT: object, VALUE: float})


@component(
    fingerprint=source_fingerprint,
    code_deps=("recops.data",),
    retries=2,
    retry_on=(OSError,),
)
def ingest(source: Source) -> Dataset:
    """Read the events and the catalog the source names."""
    if isinstance(source, WorldSource):
        from recops.data.world import generate_world

        return generate_world(source.world)[1]
    if isinstance(source, DatasetSource):
        from recops.data.loaders import load_dataset

        return load_dataset(source.name, source.data_dir, download=source.download)
    from recops.data.loaders import read_catalog, read_interactions

    if isinstance(source, FilesSource):
        items = read_catalog(source.catalog)[0] if source.catalog else empty_items()
        events, _ = read_interactions(source.interactions, catalog=items if len(items) else None)
        return Dataset(events, items, name=Path(source.interactions).stem)
    items = read_catalog(source.catalog)[0] if source.catalog else empty_items()
    events = read_event_log(source.path).sort_values(TIMESTAMP, kind="stable")
    name = "event_log" if "://" in source.path else Path(source.path).stem
    return Dataset(events.reset_index(drop=True), items, name=name)
