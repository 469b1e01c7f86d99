"""What every PostgreSQL backend of recops shares: connecting, and naming a database safely.

The event log (:mod:`recops.serving.eventlog_postgres`) and the experiment store
(:mod:`recops.experiments.store_postgres`) live in one database; both open their
connections here and name the database in messages by :func:`redact`, which drops
the password.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["connect", "redact"]


def redact(url: str) -> str:
    """``postgresql://user@host:port/db`` of a connection URL: no password, for messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://<unparsable URL>"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"


def connect(url: str, connect_timeout_s: float = 5.0) -> psycopg.Connection[Any]:
    """An autocommit connection (transactions are explicit ``BEGIN``/``COMMIT``)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(connect_timeout_s)))
