"""Online user state in Redis: one live history per user, shared by every worker and machine.

Selected by ``state_url = "redis://..."`` (``RECOPS_STATE_URL``); the in-process
:class:`~recops.serving.state.UserStateStore` stays the default. A server that
acknowledges an event has written it to Redis first (its follower catches up
before the reply, as in-process), and every server reads a user's history from
Redis on each recommendation: a click acknowledged by one server changes the next
recommendation served by any other, with no follower lag in between.

**What Redis holds.** Per user a sorted set ``<prefix>h:<user>`` (item → the log id
of the user's latest event on it) and a hash ``<prefix>t:<user>`` (item → that
event's timestamp), both with a TTL (``state_ttl_s``) renewed by each new event, and
``<prefix>position``: the highest log id applied by any server. Only positive events
on items a loaded version knows are kept, at most ``history_size`` items per user
(the oldest dropped); memory as a whole is Redis's ``maxmemory`` (with
``allkeys-lru``, as in ``compose.yaml``): give the state a Redis database of its own.

**Idempotent, in log order.** An event is applied by a Lua script that keeps, per
item, the highest log id (``ZADD`` only if greater) and trims the lowest ids: the
result is the same whichever servers apply which events, how often, in what order.
So servers share the ``position`` cursor and each applies only what nobody applied
yet, and a server killed between its commit and its write to Redis loses nothing:
the next catch-up of any server applies it (ids are commit-ordered in both logs).

**When Redis is unreachable, recommendations go on, labelled; events too.** A
failed call (refused, or slower than ``state_timeout_ms``) opens a breaker for a
second, during which Redis is not asked at all. Meanwhile a recommendation is
served from what the model knows of the user (its training history) and the
request's own items: a known user still gets a personalised list, a new one the
cold-start list, never a 5xx. Such a reply carries ``X-Recops-Online-State:
unavailable`` (:class:`~recops.serving.state_label.StateLabel`), and ``/metrics`` counts them
(``recops_online_state_unavailable_requests``; ``recops_online_state_available``
says 0). Events are still stored and acknowledged (the log is the durable part);
they reach Redis on the first catch-up after it is back. If Redis comes back empty
(a restart without persistence), the follower replays the log's last
``warm_start_events`` events into it, as at a server's start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import redis
from prometheus_client.metrics_core import Metric
from redis.backoff import NoBackoff
from redis.retry import Retry

from recops.serving.eventlog import Activity, EventLog
from recops.serving.follower import LogFollower
from recops.serving.metrics import counter, gauge
from recops.serving.state import (
    EMPTY_HISTORY,
    POSITIVE_EVENTS,
    KnownItem,
    UserHistory,
    UserStateStore,
)
from recops.serving.state_label import mark_unavailable

log = logging.getLogger("recops.serving")

__all__ = ["RedisFollower", "RedisUserState", "StateUnavailableError"]

#: Events per script call: a call blocks Redis while it runs (about 1 ms per 1,000).
_CHUNK = 1_000

# KEYS[1]: the position; then per event its history (sorted set) and times (hash).
# ARGV: history size, TTL, the last log id of the batch, then per event item, id, time.
_APPLY = """
local size = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for k = 1, (#KEYS - 1) / 2 do
    local h, t = KEYS[2 * k], KEYS[2 * k + 1]
    local item, id = ARGV[3 * k + 1], tonumber(ARGV[3 * k + 2])
    local current = redis.call('ZSCORE', h, item)
    if not current or tonumber(current) < id then
        redis.call('ZADD', h, id, item)
        redis.call('HSET', t, item, ARGV[3 * k + 3])
        local extra = redis.call('ZCARD', h) - size
        if extra > 0 then
            local old = redis.call('ZRANGE', h, 0, extra - 1)
            redis.call('ZREMRANGEBYRANK', h, 0, extra - 1)
            redis.call('HDEL', t, unpack(old))
        end
    end
    redis.call('EXPIRE', h, ttl)
    redis.call('EXPIRE', t, ttl)
end
local position = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[3]) > position then
    redis.call('SET', KEYS[1], ARGV[3])
end
return position
"""
# One round trip per recommendation: the items in log order, then their times.
_READ = """
local items = redis.call('ZRANGE', KEYS[1], 0, -1)
if #items == 0 then
    return {}
end
return {items, redis.call('HMGET', KEYS[2], unpack(items))}
"""


class StateUnavailableError(RuntimeError):
    """Redis did not answer (or the breaker is open after a recent failure)."""


class RedisUserState(UserStateStore):
    """Users' recent items in Redis, read by every server (see the module docstring).

    Parameters
    ----------
    url:
        ``redis://[:password@]host:port/db`` (``rediss://`` for TLS, ``unix://``).
    history_size:
        Items kept per user.
    ttl_s:
        A user's history expires this long after their last positive event.
    timeout_s:
        Longest wait for Redis (connect or reply) before the request goes on without
        the live history.
    retry_s:
        After a failure Redis is left alone this long (the breaker), so that an
        outage costs requests nothing.
    prefix:
        Prefix of every key.
    known_item:
        Keeps an event only if this maps its item to an id (a loaded version's).
    client:
        A client to use instead of one made from ``url`` (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        history_size: int = 50,
        ttl_s: int = 30 * 86_400,
        timeout_s: float = 0.1,
        retry_s: float = 1.0,
        prefix: str = "recops:",
        known_item: KnownItem | None = None,
        client: redis.Redis | None = None,
    ) -> None:
        # Not the in-process constructor: none of its maps; the same bounds' checks.
        if isinstance(history_size, bool) or not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"`history_size` must be a positive int (got {history_size!r})")
        self.history_size = history_size
        self.known_item = known_item
        if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
            raise ValueError(f"`ttl_s` must be a positive int of seconds (got {ttl_s!r})")
        for name, value in (("timeout_s", timeout_s), ("retry_s", retry_s)):
            if not 0.0 < value <= 60.0:
                raise ValueError(f"`{name}` must be in (0, 60] seconds (got {value!r})")
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.prefix = prefix
        # One retry at once: a pooled connection that Redis closed (a restart) is
        # opened again; a second failure opens the breaker.
        self.client = client or redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self._apply = self.client.register_script(_APPLY)
        self._read = self.client.register_script(_READ)
        self._position_key = f"{prefix}position"
        self._open_until = 0.0
        self._info_lock = threading.Lock()
        self._info_at = -float("inf")
        self._info = (0, 0, 0)
        #: Redis calls that failed, since start.
        self.failures = 0
        #: Histories asked for while Redis was unavailable (served without them).
        self.unavailable_requests = 0

    # --- the breaker -----------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False while the breaker is open after a failure."""
        return time.monotonic() >= self._open_until

    def _call(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.available:
            raise StateUnavailableError("Redis failed less than a second ago")
        try:
            return call(*args, **kwargs)
        except redis.RedisError as exc:
            self.failures += 1
            if self.available:  # once per outage, not once per request
                log.warning(
                    "online state: Redis failed (%s); serving without live histories for "
                    "%.1f s before trying again",
                    exc,
                    self.retry_s,
                )
            self._open_until = time.monotonic() + self.retry_s
            raise StateUnavailableError(str(exc)) from exc

    # --- reading (every recommendation) ----------------------------------------------

    def history(self, user_id: str) -> UserHistory:
        """The user's live items, oldest first; empty (and labelled) when Redis is down."""
        try:
            found = self._call(
                self._read, keys=[f"{self.prefix}h:{user_id}", f"{self.prefix}t:{user_id}"]
            )
        except StateUnavailableError:
            self.unavailable_requests += 1
            mark_unavailable()
            return EMPTY_HISTORY
        if not found:
            return EMPTY_HISTORY
        items, times = found
        return UserHistory(
            np.array(items, dtype=object), np.array([int(t or 0) for t in times], dtype=np.int64)
        )

    def position(self) -> int | None:
        """The highest log id applied by any server (None: Redis holds none)."""
        value = self._call(self.client.get, self._position_key)
        return None if value is None else int(value)

    # --- writing (the followers) -----------------------------------------------------

    def apply(self, rows: Sequence[Activity]) -> None:
        """Apply log rows (in id order) and move the shared position to the last one.

        Raises
        ------
        StateUnavailableError
            Redis did not take them (nothing to undo: applying again is harmless).
        """
        known = self.known_item
        keep: list[tuple[str, str, int, int]] = []
        for row_id, user_id, item_id, event, timestamp in rows:
            if event not in POSITIVE_EVENTS:
                continue
            item = item_id if known is None else known(item_id)
            if item is not None:
                keep.append((user_id, item, row_id, timestamp))
        last = rows[-1][0] if rows else 0
        for start in range(0, max(len(keep), 1), _CHUNK):
            chunk = keep[start : start + _CHUNK]
            keys = [self._position_key]
            args: list[object] = [self.history_size, self.ttl_s, last]
            for user_id, item, row_id, timestamp in chunk:
                keys += [f"{self.prefix}h:{user_id}", f"{self.prefix}t:{user_id}"]
                args += [item, row_id, int(timestamp)]
            self._call(self._apply, keys=keys, args=args)

    def record_many(self, events: Iterable[tuple[str, str, int]]) -> None:
        """Not for this store: its writes carry log ids (:meth:`apply`, by :class:`RedisFollower`).

        Raises
        ------
        TypeError
            Always: without a log id a write could not be applied once and in order
            by several servers.
        """
        raise TypeError(
            "RedisUserState is written from the event log by a RedisFollower (apply(rows) "
            "with log ids), not by record_many"
        )

    def forget(self, user_id: str) -> bool:
        """Drop a user's live history (e.g. a deletion request); True if there was any."""
        keys = (f"{self.prefix}h:{user_id}", f"{self.prefix}t:{user_id}")
        return bool(self._call(self.client.delete, *keys))

    # --- size, for /metrics ----------------------------------------------------------

    def _sizes(self) -> tuple[int, int, int]:
        """``(keys, used bytes, evicted keys)`` of the Redis database, at most a second old."""
        with self._info_lock:
            if time.monotonic() - self._info_at >= 1.0:
                self._info_at = time.monotonic()
                try:
                    keys = int(self._call(self.client.dbsize))
                    memory = self._call(self.client.info, "memory")
                    stats = self._call(self.client.info, "stats")
                    self._info = (keys, int(memory["used_memory"]), int(stats["evicted_keys"]))
                except StateUnavailableError:
                    pass  # the last sizes stand; the failure is counted
            return self._info

    def __len__(self) -> int:
        """Users in Redis (two keys each, besides the position), its database to itself."""
        return max(0, self._sizes()[0] - 1) // 2

    @property
    def bytes(self) -> int:
        """Memory Redis uses (its ``used_memory``)."""
        return self._sizes()[1]

    @property
    def evicted(self) -> int:  # type: ignore[override]
        """Keys Redis evicted under ``maxmemory``."""
        return self._sizes()[2]

    def collect(self) -> Iterator[Metric]:
        """The outage metrics (for :meth:`~recops.serving.metrics.ServerMetrics.watch`)."""
        yield gauge(
            "recops_online_state_available",
            "1 while Redis answers; 0 while recommendations go without live histories.",
            1.0 if self.available else 0.0,
        )
        yield counter(
            "recops_online_state_unavailable_requests",
            "Recommendations served without the live history (Redis unavailable).",
            self.unavailable_requests,
        )
        yield counter("recops_online_state_failures", "Redis calls that failed.", self.failures)


class RedisFollower(LogFollower):
    """Applies the log to :class:`RedisUserState`, sharing the work with every other server.

    Each catch-up starts after the shared position (what any server applied) or its
    own, whichever is further, so N servers do not write every event N times.
    Freshness does not depend on :meth:`poll` (a server catches up before it
    acknowledges, and every server reads Redis): polls only pick up what a server
    that died between its commit and its write left behind, so they catch up at most
    once per ``poll_interval_s`` instead of on every request after a commit.
    """

    state: RedisUserState

    def __init__(
        self,
        log: EventLog,
        state: RedisUserState,
        batch: int = 10_000,
        poll_interval_s: float = 0.1,
    ) -> None:
        super().__init__(log, state, batch)
        #: Events replayed into a Redis that holds none (set by :meth:`warm`).
        self.replay_events = 0
        self.poll_interval_s = poll_interval_s
        self._changed = False
        self._polled_at = -float("inf")

    def poll(self) -> int:
        """Catch up if the log changed and the last poll's catch-up is old enough."""
        self._changed = self.log.changed() or self._changed
        if not self._changed or time.monotonic() - self._polled_at < self.poll_interval_s:
            return 0
        self._changed = False
        self._polled_at = time.monotonic()
        return self.catch_up()

    def warm(self, n_events: int) -> int:
        """Bring Redis up to the log's end, replaying at most its last ``n_events`` events."""
        self.replay_events = n_events
        last = self.log.last_id()
        self.position = max(0, last - n_events)
        try:
            shared = self.state.position()
        except StateUnavailableError:
            return 0  # the first catch-up after Redis is back does it
        return self._sync(max(self.position, shared or 0), last)

    def catch_up(self) -> int:
        """Apply what no server applied yet; 0 while Redis is unavailable."""
        try:
            shared = self.state.position()
        except StateUnavailableError:
            return 0
        if shared is None and self.position > 0:
            # Redis lost what it held (restarted empty, flushed): replay as at a start.
            start = max(0, self.position - self.replay_events)
        else:
            start = max(self.position, shared or 0)
        return self._sync(start, None)

    def _sync(self, start: int, last: int | None) -> int:
        position, applied = start, 0
        try:
            while last is None or position < last:
                rows = self.log.activity(position, self.batch)
                if last is not None:
                    rows = [r for r in rows if r[0] <= last]
                if not rows:
                    break
                self.state.apply(rows)
                position = rows[-1][0]
                applied += len(rows)
        except StateUnavailableError:
            pass  # what was applied stays; the rest waits for Redis
        self.position = max(self.position, position)
        return applied
