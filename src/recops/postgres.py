"""What every PostgreSQL backend of recops shares: connecting, naming a database safely,
running an embedded store's SQL, and serialising its writers.

The event log (:mod:`recops.serving.eventlog.postgres`), the experiment store
(:mod:`recops.experiments.store_postgres`) and the controller's state
(:mod:`recops.ct.state_postgres`) live in one database; they open their connections
here and name the database in messages by :func:`redact`, which drops the password.
The stores whose rules are their SQLite twin's own code run it through
:class:`QmarkConnection` and take :func:`serialised` where SQLite took ``BEGIN
IMMEDIATE``.

psycopg is imported when a connection is made, not with this module: an embedded
(SQLite) setup asks :func:`is_postgres_url` without the ``backends`` extra installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["QmarkConnection", "connect", "is_postgres_url", "redact", "serialised"]


def is_postgres_url(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """``postgresql://user@host:port/db`` of a connection URL: no password, for messages."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://<unparsable URL>"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"


def connect(url: str, connect_timeout_s: float = 5.0) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit ``BEGIN``/``COMMIT``)."""
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(connect_timeout_s)))


class QmarkConnection:
    """A PostgreSQL connection that takes a SQLite store's ``?`` parameter markers.

    The stores' statements hold no ``?`` or ``%`` of their own (they are their
    constants, and values always travel as parameters), so the translation is exact.
    A connection that broke (a database restart) is opened again at its next use;
    the operation that met the break fails with the error.
    """

    def __init__(self, url: str, connect_timeout_s: float) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.conn = connect(url, connect_timeout_s)

    def connection(self) -> psycopg.Connection[Any]:
        """The connection, opened again when it broke."""
        if self.conn.closed or self.conn.broken:
            self.conn.close()
            self.conn = connect(self.url, self.connect_timeout_s)
        return self.conn

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        """``statement`` with ``?`` markers, run on the connection."""
        return self.connection().execute(statement.replace("?", "%s"), args)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@contextmanager
def serialised(db: QmarkConnection, scope: str) -> Iterator[psycopg.Connection[Any]]:
    """One transaction, with the writers of ``scope`` in this schema queued behind each other.

    SQLite's ``BEGIN IMMEDIATE`` made a store's read-check-write atomic against
    other writers; here a transaction-level advisory lock keyed by ``scope`` and the
    connection's schema, taken first, does (released at ``COMMIT``/``ROLLBACK``).
    Rolled back on any exception, unless the connection broke (nothing to roll back).
    """
    from psycopg.pq import TransactionStatus

    conn = db.connection()
    conn.execute("BEGIN")
    try:
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(current_schema()))", (scope,)
        )
        yield conn
    except BaseException:
        if not conn.broken and conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
