"""The controller's state in PostgreSQL, in the database (and schema) of the event log.

:class:`PostgresStateStore` is :class:`~recops.ct.state.BaseStateStore` on a
PostgreSQL connection: the state machine, the cycles and the decision log are the
SQLite store's own code and tables (``controller``, ``cycles``, ``decisions``, beside
the log's). What SQLite or the kernel did by itself is done here:

* **A transition checks the state it leaves.** SQLite's ``BEGIN IMMEDIATE`` becomes
  a transaction-level advisory lock per schema taken first
  (:func:`recops.postgres.serialised`): two controllers, even on two machines,
  cannot both read ``training`` and both leave it. (A row lock, ``SELECT ... FOR
  UPDATE``, would not do: the first transition of a model has no row to lock.)
* **Decisions are append-only.** A trigger refuses ``UPDATE``, ``DELETE`` and
  ``TRUNCATE`` on ``decisions``.
* **One controller at a time.** The ``flock`` of the state file becomes a session
  advisory lock (``pg_try_advisory_lock``) on a connection of its own, held for the
  step: closing it releases the lock, and so does the server when the holder dies
  or its connection drops. The refusal names the holder (its ``application_name``:
  process id and host). A step whose lock connection drops while it runs goes on
  unguarded until it ends; a second controller can then start, but every
  transition still checks the state it leaves, so the two cannot both record one.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from recops.ct.state import TABLES, BaseStateStore, Connection, ControllerBusyError
from recops.postgres import QmarkConnection, connect, redact, serialised

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStateStore"]

_SCHEMA = (
    *TABLES.format(int="BIGINT", real="DOUBLE PRECISION").split(";"),
    """
CREATE OR REPLACE FUNCTION recops_ct_decisions_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'decisions are append-only';
END
$$
""",
    """
CREATE OR REPLACE TRIGGER decisions_append_only
    BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION recops_ct_decisions_append_only()
""",
    """
CREATE OR REPLACE TRIGGER decisions_no_truncate
    BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION recops_ct_decisions_append_only()
""",
)
#: Keys of the advisory locks (with the schema): writers' transactions, the controller.
_WRITERS = "recops.ct.state"
_CONTROLLER = "recops.ct.controller"
_KEY = "hashtext(%s), hashtext(current_schema())"
#: Who holds the controller's lock: the session of the lock in this database.
_HOLDER = f"""
SELECT a.application_name, a.pid
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (l.classid, l.objid) = (SELECT k1::oid, k2::oid FROM (SELECT {_KEY}) AS k (k1, k2))
"""


class PostgresStateStore(BaseStateStore):
    """The controller's state in PostgreSQL (tables in the connection's schema).

    Parameters
    ----------
    url:
        ``postgresql://...``: the event log's database (its ``event_log``).
    clock:
        Wall-clock seconds for ``Decision.wall`` (a test may pin it).
    connect_timeout_s:
        How long opening a connection may take.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.location = redact(url)
        self._clock = clock
        self._db = QmarkConnection(url, connect_timeout_s)
        self._conn = self._db
        with serialised(self._db, _WRITERS) as conn:
            for statement in _SCHEMA:
                if statement.strip():
                    conn.execute(statement)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with serialised(self._db, _WRITERS):
            yield self._db

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the controller's session advisory lock for the block (the module docstring)."""
        return _session_lock(self.url, self._db.connect_timeout_s, self.location)


@contextmanager
def _session_lock(url: str, connect_timeout_s: float, location: str) -> Iterator[None]:
    conn = connect(url, connect_timeout_s)
    try:
        me = f"recops-ct pid {os.getpid()} on {socket.gethostname()}"
        conn.execute("SELECT set_config('application_name', %s, false)", (me[:63],))
        (taken,) = conn.execute(f"SELECT pg_try_advisory_lock({_KEY})", (_CONTROLLER,)).fetchall()
        if not taken[0]:
            raise ControllerBusyError(
                f"another controller holds the lock of {location} ({_holder(conn)}): "
                "one controller per state database and schema"
            )
        yield
    finally:
        conn.close()  # releases the lock


def _holder(conn: psycopg.Connection[Any]) -> str:
    found = conn.execute(_HOLDER, (_CONTROLLER,)).fetchall()
    if not found:
        return "released meanwhile"
    name, pid = found[0]
    return f"{name or 'no application_name'}, backend pid {pid}"
