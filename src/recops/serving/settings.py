"""Configuration of the inference server, validated once at start-up.

Every field has an embedded default so that ``recops serve --models DIR`` starts with
nothing else installed, and an environment variable ``RECOPS_<FIELD>``
(``RECOPS_ADMIN_TOKEN`` above all, so the token never has to appear on a command
line); :func:`recops.serving.config.load_settings` reads them, the options and a
config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The prefix of every setting's environment variable (``RECOPS_<FIELD>``).
ENV_PREFIX = "RECOPS_"


class ServerSettings(BaseModel):
    """Everything the server needs to know, with defaults that work on a laptop.

    Parameters
    ----------
    host, port:
        Where to listen (port 0: any free port).
    max_connections:
        Open connections per worker process. One more closes the oldest connection
        that is not inside a request (half-open, or idle between keep-alive
        requests); when all are inside one, the new connection gets 503. Kept below
        the open-file limit (see :mod:`recops.serving.connections`).
    header_timeout_s, body_timeout_s:
        A request's headers must arrive within ``header_timeout_s`` of the
        connection's start (or of the request's first byte on a keep-alive
        connection), its body within ``body_timeout_s`` of the headers' end; else
        408 and the connection is closed.
    keep_alive_s:
        An idle keep-alive connection is closed after this many seconds (uvicorn's
        ``timeout_keep_alive``); keep it below the proxy's own idle timeout.
    backlog:
        Connections the kernel queues before the server accepts them.
    forwarded_allow_ips:
        Proxies trusted to set ``X-Forwarded-For``/``-Proto`` (comma-separated
        addresses, or ``*``): the client address (the quota's key, the access log)
        is then the real client's.
    log_level:
        Log level of the server and uvicorn (``debug``, ``info``, ``warning``, ...).
    log_format:
        ``text`` for people, ``json`` (one object per line, with the request id and
        the worker) for a log collector (see :mod:`recops.serving.logs`).
    access_log:
        One log line per request (method, path, status, duration, client).
    model_repository:
        Root of the model repository; a model lives in ``<root>/<name>/<version>/``.
        A folder, or an fsspec URL of object storage (``s3://bucket/models``,
        ``gs://...``; see :mod:`recops.serving.storage`).
    model_cache:
        Where versions on object storage are downloaded to be loaded (the workers
        share it); default a folder per repository in the system's temporary folder.
    model_name:
        The model to serve; ``None`` serves the only model in the repository.
    version_policy:
        ``"latest"`` serves the highest version (numeric versions compare as numbers);
        ``"pinned"`` serves ``pinned_version``.
    pinned_version:
        The version served under the ``"pinned"`` policy.
    admin_token:
        Bearer token of the admin API; ``None`` disables the admin API (403).
    event_log_path:
        SQLite file of the durable event log.
    event_log_url:
        A PostgreSQL database for the event log and the experiment store instead of
        the SQLite file (``postgresql://user:password@host:5432/db``; see
        :mod:`recops.serving.eventlog.postgres`). ``None``: ``event_log_path``.
    catalog_updates_path:
        A JSON Lines file of new items (``item_id``, optional ``title``,
        ``categories``, ``publish_time``), appended to by ``POST /v1/admin/items``
        or any other writer: every worker applies its new lines to its loaded
        versions within half a second, a version loaded later and a restarted
        worker apply all of it (see :mod:`recops.serving.items`). ``None``: with
        several workers, ``items.jsonl`` in the run folder; else the admin route
        reaches only the versions loaded at the time.
    history_size:
        Recent items kept per user in the online state.
    max_users:
        Users kept in the online state; the least recently active are evicted first.
    state_max_bytes:
        Estimated bytes of the online state (see :mod:`recops.serving.state`: about
        300 bytes per user plus its id, 64 per history item); beyond it the least
        recently active users are evicted, whose trained histories stay in the model.
        ``None``: bounded by ``max_users`` only.
    state_url:
        A Redis server holding the online state for every worker and machine
        (``redis://host:6379/0``; see :mod:`recops.serving.state_redis`), bounded by
        ``history_size`` per user and Redis's ``maxmemory``. ``None``: in each
        process, following the event log (``max_users``, ``state_max_bytes``).
    state_ttl_s:
        With ``state_url``: a user's live history expires this long after their
        last event (their trained history stays in the model).
    state_timeout_ms:
        With ``state_url``: the longest wait for Redis; past it the recommendation
        is served without the live history, labelled, and Redis is left alone
        for a second.
    event_token:
        When set, ``POST /v1/events`` needs ``Authorization: Bearer <event_token>``
        (or the admin token), 401 otherwise (see :mod:`recops.serving.event_gate`).
    event_quota_bytes_per_s, event_quota_burst_bytes:
        Each client (its token, or else its address) may send this many bytes of
        events per second, in bursts up to ``event_quota_burst_bytes``; beyond: 429
        with ``Retry-After``. 0 turns the quota off.
    warm_start_events:
        Events replayed from the log into the online state at start-up.
    idempotency_window_s:
        How long ``POST /v1/events`` remembers an ``Idempotency-Key`` or an
        ``event_id`` (a retry within it is stored once; see
        :mod:`recops.serving.eventlog`).
    batching:
        Compute the recommend requests that arrive together stage by stage as one
        batch, with one index search for all of them (:mod:`recops.serving.batching`).
        On by default: one worker on one core, ``wrk`` at concurrency 8 on the other
        (benchmarks/serving.py), it cut the route's server CPU from about 318 to
        250 µs per request (each stage finds its data in cache for all but the first
        request of a batch); a lone request is computed at once, as without it.
    batch_max_delay_ms:
        Longest time a request waits for others to join its batch. 0 (the default)
        takes what arrived in the same event-loop turn, so a request never waits;
        0.1-0.3 ms made no larger batches at concurrency 8 (the loop is busy anyway).
    batch_max_size:
        Largest batch.
    exact_index_max_items:
        Catalogs up to this size get an exact index, larger ones ``ann_kind``.
        Measured on 2 cores, one thread, 100k items x 64 dims, queries = trained
        two-tower user vectors (benchmarks/serving.py): exact 1.0-1.5 ms per query;
        IVF 0.07 ms at recall@100 0.92 (nlist 1264, nprobe 48; the served top-10
        after re-ranking matched the exact one); HNSW (M 32, ef 128) 0.09 ms but
        recall@100 0.86 and 10 s to build.
    ann_kind:
        ``"ivf"`` (builds in about 4 s per 100k items) or ``"hnsw"`` (about 10 s).
    ivf_nlist:
        IVF cells (k-means centroids). ``None``: ``8 * sqrt(n_items)``, at most 2048
        (:func:`recops.serving.index.default_nlist` says why).
    ivf_nprobe:
        IVF cells scanned per query (of ``ivf_nlist``) when
        ``ivf_target_recall`` is off or a version has no known users to tune on;
        the scan grows linearly with nprobe. On the 1M-item ANN catalog, recall@100
        was 0.93 at 48 (0.28 ms per query) and 0.97 at 64 (0.33 ms).
    ivf_target_recall:
        Each IVF version is tuned as it loads: the fewest cells that keep this
        share of the exact top-10 of up to 256 of its known users among the
        ``rerank_candidates`` the server fetches
        (:meth:`recops.serving.index.VectorIndex.tune_nprobe`; ``GET /v1/models``
        shows the choice). How many cells a catalog needs
        depends on how its vectors cluster, which a fixed number cannot know: on
        the 100k benchmark catalog 0.995 chose 24 cells where 48 were fixed
        before (0.999 kept), the served top-10 still the exact full score's
        for every one of 300 users, and a top-100 search 39 → 26 µs. ``None``:
        always ``ivf_nprobe``.
    hnsw_m, hnsw_ef_construction, hnsw_ef_search:
        HNSW graph degree and beam widths.
    rerank_candidates:
        Candidates fetched from the index per request before re-ranking with the
        item prior (at least ``k`` are always fetched); the prior's own top 50
        join them. On the benchmark catalog 20, 50 and 100 served the same top-10;
        50 leaves room for k up to 50 without a second look.
    prior_refresh_s:
        The item prior (O(n_items), about 20 ms at 100k items) is recomputed once
        per this many seconds and shared by the requests in between.
    prior_computations_per_s:
        Most item priors the server computes per second for windows that requests
        asked for and did not find (a ``now`` within the skew but in another
        window); such a request is served with the nearest window computed, never
        computes it itself (see :mod:`recops.serving.prefetch`). The present and
        next windows are always kept.
    max_clock_skew_s:
        A request's ``now`` must lie within the server clock ± this many seconds
        (422 otherwise, see :mod:`recops.serving.clock`).
    replay:
        Accept any ``now``: for a server that a simulator or a replay of the past
        drives with its own time (``recops.sim``), never for one facing clients. A
        request then computes the prior of its own window when it is not cached
        (exact for the replayed time; the cost lands on that request).
    max_body_bytes:
        Request bodies above this size are refused with 413.
    threads:
        BLAS/OpenMP/torch/faiss threads per process. One is fastest for single
        queries on a small machine; scale with processes instead.
    benchmark_routes:
        Expose ``GET /v1/ceiling``, a route returning a fixed list, to measure the
        framework's ceiling.
    workers:
        Server processes (``recops serve --workers``, see
        :mod:`recops.serving.supervisor`). Each has one event loop, its own socket,
        its own copy of the model and index, and an online state that follows the
        shared event log, so any worker sees an event acknowledged by any other;
        admin operations reach every worker and metrics are summed over them (see
        :mod:`recops.serving.workers`). One per core: a request computes inline.
    worker_timeout_s:
        With several workers, a worker whose event loop has not beaten (its
        heartbeat in the run folder) for this long is hung: the supervisor kills
        it (SIGKILL) and starts another.
    worker_start_timeout_s:
        A worker not ready this long after its start (imports, model load, replay
        of the log) is killed and started again.
    drain_s:
        On SIGTERM, how long the server keeps serving while ``/readyz`` answers 503
        (so the load balancer moves traffic away), before it closes.
    admin_wait_s:
        With several workers, how long an admin call waits for the other workers
        to apply its operation before it replies with their states.
    log_exposures:
        Log every served user → items slate as an exposure (items, positions, exact
        propensities, scores) in the event log, so that clicks sent with the reply's
        ``request_id`` join it: the log A/B analysis and off-policy evaluation read.
    exposure_sync:
        Make the reply wait until its exposure is committed (see
        :mod:`recops.serving.exposure_log`); by default it is committed with the
        next group commit, milliseconds later, without holding the reply.
    experiments:
        Apply the running experiments of the experiment store (``recops experiment``),
        which lives in the event log's database file.
    experiment_refresh_s:
        How often the server looks for experiment changes (start, stop, ramp).
    run_dir:
        Set by ``recops serve`` when it starts several workers: the folder, new for
        each run, through which they share admin operations and metrics.
    worker_index:
        Set by ``recops serve`` for each of several workers: its position, 0 to
        ``workers - 1`` (kept by its replacements), the ``worker`` of its logs and
        metrics.
    follow_alias:
        Serve the version this MLflow registry alias points at (``champion``), and
        switch (every worker, atomically) within ``follow_interval_s`` of a move.
        The version policy is then not applied: until the alias names a version
        (unset, the registry unreachable at start-up), nothing is served and
        ``/readyz`` and the recommendation routes answer 503 with the reason; once
        one is served, a later problem keeps it (see
        :mod:`recops.serving.registry_follower`).
    registry_uri:
        The MLflow registry of ``follow_alias``; default ``$MLFLOW_TRACKING_URI``,
        else the embedded SQLite store under ``$RECOPS_HOME`` (see
        :mod:`recops.registry.settings`).
    follow_interval_s:
        How often the server asks the registry where the alias points (also the
        ``Retry-After`` of a request refused before the alias names a version).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=0, le=65_535)
    max_connections: int = Field(default=4096, ge=1, le=1_000_000)
    header_timeout_s: float = Field(default=10.0, gt=0.0, le=3600.0)
    body_timeout_s: float = Field(default=15.0, gt=0.0, le=3600.0)
    keep_alive_s: float = Field(default=5.0, gt=0.0, le=3600.0)
    backlog: int = Field(default=2048, ge=1, le=65_535)
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "warning"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = False
    model_repository: str | Path = Path("models")
    model_cache: Path | None = None
    model_name: str | None = None
    version_policy: Literal["latest", "pinned"] = "latest"
    pinned_version: str | None = None
    admin_token: str | None = Field(default=None, repr=False)
    event_log_path: Path = Path("recops-events.sqlite3")
    event_log_url: str | None = Field(default=None, pattern=r"^postgres(ql)?://", repr=False)
    catalog_updates_path: Path | None = None
    history_size: int = Field(default=50, ge=1, le=10_000)
    max_users: int = Field(default=1_000_000, ge=1)
    state_max_bytes: int | None = Field(default=512 * 1024**2, ge=1024**2)
    state_url: str | None = Field(default=None, pattern=r"^(rediss?|unix)://", repr=False)
    state_ttl_s: int = Field(default=30 * 86_400, ge=1, le=366 * 86_400)
    state_timeout_ms: float = Field(default=100.0, gt=0.0, le=60_000.0)
    event_token: str | None = Field(default=None, repr=False, min_length=1)
    event_quota_bytes_per_s: int = Field(default=2 * 1024**2, ge=0)
    event_quota_burst_bytes: int = Field(default=16 * 1024**2, ge=1024)
    warm_start_events: int = Field(default=1_000_000, ge=0)
    idempotency_window_s: float = Field(default=86_400.0, gt=0.0, le=366 * 86_400.0)
    batching: bool = True
    batch_max_delay_ms: float = Field(default=0.0, ge=0.0, le=100.0)
    batch_max_size: int = Field(default=32, ge=1, le=4096)
    exact_index_max_items: int = Field(default=20_000, ge=0)
    ann_kind: Literal["ivf", "hnsw"] = "ivf"
    ivf_nlist: int | None = Field(default=None, ge=1, le=1_000_000)
    ivf_nprobe: int = Field(default=48, ge=1, le=65_536)
    ivf_target_recall: float | None = Field(default=0.995, gt=0.0, le=1.0)
    hnsw_m: int = Field(default=32, ge=4, le=256)
    hnsw_ef_construction: int = Field(default=80, ge=8, le=2048)
    hnsw_ef_search: int = Field(default=128, ge=8, le=4096)
    rerank_candidates: int = Field(default=50, ge=1, le=100_000)
    prior_refresh_s: int = Field(default=60, ge=1, le=86_400)
    prior_computations_per_s: float = Field(default=2.0, gt=0.0, le=1000.0)
    max_clock_skew_s: int = Field(default=300, ge=0, le=86_400)
    replay: bool = False
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    threads: int = Field(default=1, ge=1, le=256)
    benchmark_routes: bool = False
    workers: int = Field(default=1, ge=1, le=256)
    worker_timeout_s: float = Field(default=10.0, gt=0.0, le=3600.0)
    worker_start_timeout_s: float = Field(default=600.0, gt=0.0, le=86_400.0)
    drain_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    admin_wait_s: float = Field(default=120.0, gt=0.0, le=3600.0)
    log_exposures: bool = True
    exposure_sync: bool = False
    experiments: bool = True
    experiment_refresh_s: float = Field(default=1.0, gt=0.0, le=3600.0)
    run_dir: Path | None = None
    worker_index: int | None = Field(default=None, ge=0)
    follow_alias: str | None = Field(default=None, min_length=1, max_length=64)
    registry_uri: str | None = Field(default=None, min_length=1)
    follow_interval_s: float = Field(default=1.0, gt=0.0, le=3600.0)

    @field_validator("model_repository", mode="after")
    @classmethod
    def _folder_or_url(cls, value: str | Path) -> str | Path:
        # A URL stays a string: Path("s3://b/m") would collapse it to "s3:/b/m".
        if isinstance(value, str) and "://" not in value:
            return Path(value)
        return value

    @model_validator(mode="after")
    def _pinned_needs_version(self) -> Self:
        if self.version_policy == "pinned" and not self.pinned_version:
            raise ValueError("version_policy 'pinned' needs pinned_version (got none)")
        return self
