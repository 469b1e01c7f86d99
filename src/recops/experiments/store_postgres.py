"""The experiment store in PostgreSQL, in the database (and schema) of the event log.

:class:`PostgresExperimentStore` is :class:`~recops.experiments.store.ExperimentStore`
with its storage swapped: every rule (layer segments, frozen configs, ramps that only
add units, the append-only audit) is the SQLite store's own code, run on a
PostgreSQL connection. What differs is what SQLite did by itself:

* **One writer at a time.** SQLite's ``BEGIN IMMEDIATE`` becomes a transaction-level
  advisory lock per schema taken first, so two ``recops experiment create`` on two
  machines cannot both see a segment free and both take it.
* **Append-only audit.** A trigger refuses ``UPDATE`` and ``DELETE`` on
  ``experiment_changes``, as the SQLite triggers do.
* **Change polling.** :meth:`PostgresExperimentStore.changed` reads the last change
  id (one indexed query); the server asks once per ``experiment_refresh_s``.

:func:`open_experiment_store` picks the backend from a target: a ``postgresql://``
URL, or a SQLite file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recops.experiments.store import ExperimentStore
from recops.postgres import QmarkConnection, is_postgres_url, redact, serialised

__all__ = ["PostgresExperimentStore", "is_postgres_url", "open_experiment_store"]

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    layer TEXT NOT NULL,
    salt TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'running', 'stopped')),
    segment_start BIGINT NOT NULL,
    segment_size BIGINT NOT NULL,
    config TEXT NOT NULL,
    models TEXT NOT NULL,
    source TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    stopped_at BIGINT
)
""",
    """
CREATE TABLE IF NOT EXISTS experiment_changes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('create', 'replace', 'start', 'ramp', 'stop')),
    actor TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    detail TEXT NOT NULL
)
""",
    "CREATE INDEX IF NOT EXISTS experiment_changes_by_experiment "
    "ON experiment_changes (experiment, id)",
    """
CREATE OR REPLACE FUNCTION experiment_changes_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'experiment_changes is append-only';
END
$$
""",
    """
CREATE OR REPLACE TRIGGER experiment_changes_append_only
    BEFORE UPDATE OR DELETE ON experiment_changes
    FOR EACH ROW EXECUTE FUNCTION experiment_changes_append_only()
""",
)
#: The advisory lock that serialises the store's writers (see recops.postgres.serialised).
_SCOPE = "recops.experiments"


class PostgresExperimentStore(ExperimentStore):
    """Experiments and their audit log in PostgreSQL (tables in the connection's schema).

    Parameters
    ----------
    url:
        ``postgresql://...``: the event log's database (its ``event_log_url``).
    connect_timeout_s:
        How long opening the connection may take.
    """

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0) -> None:
        # Not the SQLite constructor: the same state, on another connection.
        self.url = url
        # Named in the store's messages: the URL without its password (a Path would
        # fold its "//").
        self.path = redact(url)  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._db = QmarkConnection(url, connect_timeout_s)
        self._conn = self._db  # type: ignore[assignment]
        with self._lock, self._transaction():
            for statement in _SCHEMA:
                self._db.conn.execute(statement)
        self._data_version: int | None = None
        self._seen_version: int | None = None

    def changed(self) -> bool:
        """Whether the experiments changed (in any process) since the last call."""
        with self._lock:
            version = self._version()
            changed = version != self._seen_version
            self._seen_version = version
            return changed

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        # Serialises writers, as SQLite's BEGIN IMMEDIATE (the segment check reads
        # before it writes).
        with serialised(self._db, _SCOPE):
            yield self._conn

    def _count(self, table: str, name: str) -> int:
        # The event log creates its tables once the server logs experiments.
        conn = self._db.connection()
        (exists,) = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchall()
        if not exists[0]:
            return 0
        (count,) = conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE experiment = %s", (name,)
        ).fetchall()
        return int(count[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_experiment_store(target: str | Path) -> ExperimentStore:
    """The experiment store at ``target``: a ``postgresql://`` URL or a SQLite file."""
    if is_postgres_url(target):
        return PostgresExperimentStore(str(target))
    return ExperimentStore(target)
