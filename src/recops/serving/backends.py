"""Which storage the server uses, from its settings alone: embedded, or PostgreSQL and Redis.

========================  ==========================  ==================================
what                      embedded (the default)      set ``event_log_url`` / ``state_url``
========================  ==========================  ==================================
event log                 SQLite file                 PostgreSQL (:mod:`.eventlog.postgres`)
experiment store          the same SQLite file        the same PostgreSQL database
online user state         in each process             Redis (:mod:`.state_redis`)
========================  ==========================  ==================================

The two choices are independent: PostgreSQL with in-process state serves several
workers of one machine (each follows the log); Redis makes the state shared by
servers on any number of machines. psycopg and redis are imported only when asked
for, so the embedded server needs neither.
"""

from __future__ import annotations

from pathlib import Path

from recops.experiments.store import ExperimentStore
from recops.serving.eventlog import EventLog, SQLiteEventLog
from recops.serving.follower import LogFollower
from recops.serving.metrics import ServerMetrics
from recops.serving.settings import ServerSettings
from recops.serving.state import KnownItem, UserStateStore

__all__ = ["event_log_at", "open_event_log", "open_experiment_store", "open_online_state"]


def event_log_at(target: str | Path) -> EventLog:
    """The log a command names: a ``postgresql://`` URL, or a SQLite file that exists.

    For readers (``recops experiment analyze``, the controller): a missing SQLite
    file is a FileNotFoundError, not a new empty log.
    """
    from recops.experiments.store_postgres import is_postgres_url

    if is_postgres_url(target):
        from recops.serving.eventlog.postgres import PostgresEventLog

        return PostgresEventLog(str(target))
    if not Path(target).is_file():
        raise FileNotFoundError(f"{target}: no event log there (see --event-log)")
    return SQLiteEventLog(target)


def open_event_log(settings: ServerSettings) -> EventLog:
    """The event log of ``event_log_url`` (PostgreSQL), else the SQLite ``event_log_path``."""
    if settings.event_log_url is not None:
        from recops.serving.eventlog.postgres import PostgresEventLog

        return PostgresEventLog(
            settings.event_log_url, idempotency_window_s=settings.idempotency_window_s
        )
    return SQLiteEventLog(
        settings.event_log_path, idempotency_window_s=settings.idempotency_window_s
    )


def open_experiment_store(settings: ServerSettings) -> ExperimentStore:
    """The experiment store, in the event log's database."""
    if settings.event_log_url is not None:
        from recops.experiments.store_postgres import PostgresExperimentStore

        return PostgresExperimentStore(settings.event_log_url)
    return ExperimentStore(settings.event_log_path)


def open_online_state(
    settings: ServerSettings, log: EventLog, known_item: KnownItem, metrics: ServerMetrics
) -> tuple[UserStateStore, LogFollower]:
    """The online state and what applies the log to it.

    In Redis at ``state_url`` (followed by a :class:`~.state_redis.RedisFollower`,
    which shares the work with the other servers; its outage metrics watched), else
    in this process (a :class:`LogFollower` of its own). Only items a loaded version
    knows (``known_item``) take space in either.
    """
    if settings.state_url is not None:
        from recops.serving.state_redis import RedisFollower, RedisUserState

        state = RedisUserState(
            settings.state_url,
            history_size=settings.history_size,
            ttl_s=settings.state_ttl_s,
            timeout_s=settings.state_timeout_ms / 1000.0,
            known_item=known_item,
        )
        metrics.watch(state.collect)
        return state, RedisFollower(log, state)
    local = UserStateStore(
        settings.history_size, settings.max_users, settings.state_max_bytes, known_item
    )
    return local, LogFollower(log, local)
