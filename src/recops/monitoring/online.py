"""Online metrics per model version and time bucket, from the server's log.

For each bucket ``[b, b + bucket_s)`` (aligned on multiples of ``bucket_s`` since the
epoch, so runs agree) and each served ``model/version`` (plus ``*``, all versions):

* ``requests``: served slates; ``impressions``: shown items;
* ``clicks``: shown items answered by a click carrying the slate's ``request_id``
  (several clicks on one shown item count once, as in
  :func:`recops.experiments.logs.shown_items`); ``ctr = clicks / impressions``;
* ``distinct_items`` shown, and ``coverage = distinct_items / catalog size``;
* ``cold_start_share``: share of requests answered with the ``cold_start`` strategy;
* ``events``: logged events in the bucket (for a version: those answering its slates;
  for ``*``: all, with or without a request id) — the event volume;
* ``latency_p50_ms``, ``latency_p99_ms``: from the exposures' ``context.latency_ms``
  where the server logs it; the server's own latency histogram is on its ``/metrics``
  (``recops_request_latency_seconds``) otherwise, and these are NaN.

Slates count in the bucket of their request; clicks in the bucket of the slate they
answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recops.data.schema import TIMESTAMP
from recops.experiments.logs import EXPOSURE_COLUMNS, shown_items
from recops.monitoring.logs import ServingLog

#: The ``version`` of the rows that sum every version.
ALL_VERSIONS = "*"
METRIC_COLUMNS = (
    "bucket_start",
    "model",
    "version",
    "requests",
    "impressions",
    "clicks",
    "ctr",
    "distinct_items",
    "coverage",
    "cold_start_share",
    "events",
    "latency_p50_ms",
    "latency_p99_ms",
)
NO_LATENCY = (
    "latency: the exposure log carries no `latency_ms`; the server's histogram "
    "recops_request_latency_seconds on /metrics has it"
)


@dataclass(frozen=True)
class OnlineMetrics:
    """The metrics table (:data:`METRIC_COLUMNS`, by bucket then version) and notes."""

    table: pd.DataFrame
    bucket_s: int
    catalog_size: int | None
    notes: tuple[str, ...] = ()

    def latest(self) -> pd.DataFrame:
        """The rows of the last bucket."""
        if self.table.empty:
            return self.table
        return self.table[self.table["bucket_start"] == self.table["bucket_start"].max()]


def _context(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, dict) else None


def online_metrics(
    log: ServingLog,
    *,
    bucket_s: int = 3_600,
    catalog_size: int | None = None,
    click_event: str = "click",
) -> OnlineMetrics:
    """The metrics of the module docstring over the whole of ``log``.

    Parameters
    ----------
    log:
        Exposures and events (e.g. :func:`~recops.monitoring.logs.read_serving_log`).
    bucket_s:
        Bucket width in seconds.
    catalog_size:
        Items in the catalog, for ``coverage`` (NaN when None).
    click_event:
        The event type that counts as a click.
    """
    if isinstance(bucket_s, bool) or not isinstance(bucket_s, int) or bucket_s < 1:
        raise ValueError(f"`bucket_s` must be a positive int of seconds (got {bucket_s!r})")
    if catalog_size is not None and catalog_size < 1:
        raise ValueError(f"`catalog_size` must be a positive int or None (got {catalog_size!r})")
    x = log.exposures
    if x.empty:
        return OnlineMetrics(
            pd.DataFrame(columns=list(METRIC_COLUMNS)), bucket_s, catalog_size,
            ("no exposures logged: no online metrics",),
        )  # fmt: skip
    label = x["model"].astype(str) + "\x00" + x["version"].astype(str)
    slates = pd.DataFrame(
        {
            "bucket_start": (x[TIMESTAMP].to_numpy(dtype=np.int64) // bucket_s) * bucket_s,
            "label": label.to_numpy(),
            "request_id": x["request_id"].astype(str).to_numpy(),
            "cold": [_context(c, "strategy") == "cold_start" for c in x["context"]],
            "latency": pd.to_numeric(
                pd.Series([_context(c, "latency_ms") for c in x["context"]]), errors="coerce"
            ).to_numpy(dtype=np.float64),
        }
    )
    shown = shown_items(x[list(EXPOSURE_COLUMNS)], log.responses(), click_event)
    by_request = slates.set_index("request_id")
    shown["bucket_start"] = shown["request_id"].map(by_request["bucket_start"])
    shown["label"] = shown["request_id"].map(by_request["label"])
    events = log.events
    event_label = events["request_id"].astype(str).map(by_request["label"])
    event_bucket = (events[TIMESTAMP].to_numpy(dtype=np.int64) // bucket_s) * bucket_s
    frames = []
    for everything in (False, True):
        keys = ["bucket_start"] if everything else ["bucket_start", "label"]
        s = slates.groupby(keys)
        i = shown.groupby(keys)
        part = pd.DataFrame(
            {
                "requests": s.size(),
                "cold_start_share": s["cold"].mean(),
                "latency_p50_ms": s["latency"].quantile(0.5),
                "latency_p99_ms": s["latency"].quantile(0.99),
                "impressions": i.size(),
                "clicks": i["reward"].sum(),
                "distinct_items": i["item_id"].nunique(),
            }
        )
        if everything:
            counted = pd.Series(1, index=event_bucket).groupby(level=0).size()
            part["events"] = counted.reindex(part.index).to_numpy()
            part = part.reset_index().assign(label=f"{ALL_VERSIONS}\x00{ALL_VERSIONS}")
        else:
            answered = pd.DataFrame({"bucket_start": event_bucket, "label": event_label})
            counted = answered.dropna().groupby(["bucket_start", "label"]).size()
            part["events"] = counted.reindex(part.index).to_numpy()
            part = part.reset_index()
        frames.append(part)
    table = pd.concat(frames, ignore_index=True)
    table[["model", "version"]] = table["label"].str.split("\x00", expand=True)
    table["events"] = table["events"].fillna(0).astype(np.int64)
    table["ctr"] = table["clicks"] / table["impressions"]
    table["coverage"] = table["distinct_items"] / catalog_size if catalog_size else np.nan
    table = table.sort_values(["bucket_start", "model", "version"], kind="stable")
    notes = () if np.isfinite(slates["latency"]).any() else (NO_LATENCY,)
    return OnlineMetrics(
        table[list(METRIC_COLUMNS)].reset_index(drop=True), bucket_s, catalog_size, notes
    )


#: A bucket wider than any unix time: :func:`window_metrics` puts a whole log in one.
_WHOLE = 1 << 40


def window_metrics(
    log: ServingLog, *, catalog_size: int | None = None, click_event: str = "click"
) -> pd.DataFrame:
    """The metrics of all of ``log`` in one row per version (and ``*``); no bucket column."""
    whole = online_metrics(log, bucket_s=_WHOLE, catalog_size=catalog_size, click_event=click_event)
    return whole.table.drop(columns="bucket_start").reset_index(drop=True)
