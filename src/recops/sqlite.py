"""The write transaction every embedded SQLite store uses.

``BEGIN IMMEDIATE`` takes SQLite's write lock when the transaction starts, not at its
first write: two writers that both read before they write (is this state still
the one I leave? is this segment still free?) cannot both see the old row and both
commit. Connections are opened with ``isolation_level=None``, so the transaction
is exactly this block.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` … ``COMMIT`` on ``conn``; rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
