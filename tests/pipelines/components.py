"""Toy components and pipelines the pipeline tests run (module level: Ray and Kubeflow import them).

Side effects the tests count (calls, failures to simulate) go through files in a
folder the test passes as a parameter, so no state lives in this module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from recops.pipelines import Metrics, component, pipeline, previous

OFFSET = 0


def _touch(folder: str, name: str) -> int:
    """Count one call of ``name`` in ``folder``; return the count so far."""
    path = Path(folder) / f"{name}.calls"
    path.parent.mkdir(parents=True, exist_ok=True)
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


def calls(folder: str | Path, name: str) -> int:
    """How many times ``name`` ran."""
    path = Path(folder) / f"{name}.calls"
    return int(path.read_text()) if path.exists() else 0


class Stats(Metrics):
    total: float
    rows: int


class Parts(NamedTuple):
    head: pd.DataFrame
    tail: pd.DataFrame


@component
def make(n: int, log_dir: str) -> pd.DataFrame:
    """Rows 0..n-1 and their squares."""
    _touch(log_dir, "make")
    print(f"making {n} rows")
    return pd.DataFrame({"x": range(n), "y": [i * i for i in range(n)]})


@component
def halve(frame: pd.DataFrame, log_dir: str) -> Parts:
    _touch(log_dir, "halve")
    k = len(frame) // 2
    return Parts(frame.iloc[:k].reset_index(drop=True), frame.iloc[k:].reset_index(drop=True))


@component
def total(frame: pd.DataFrame, log_dir: str, scale: float = 1.0) -> Stats:
    _touch(log_dir, "total")
    return Stats(total=float(frame["y"].sum()) * scale + OFFSET, rows=len(frame))


@component
def flaky(stats: Stats, log_dir: str, failures: int = 0) -> dict[str, float]:
    """Fails its first ``failures`` calls (counted in ``log_dir``), then succeeds."""
    if _touch(log_dir, "flaky") <= failures:
        raise ConnectionError("simulated outage")
    return {"total": stats.total}


@component
def breaks_unless(stats: Stats, log_dir: str) -> dict[str, float]:
    """Fails unless the file ``log_dir/fixed`` exists (a bug fixed between run and resume)."""
    _touch(log_dir, "breaks_unless")
    if not (Path(log_dir) / "fixed").exists():
        raise ValueError("the bug is not fixed yet")
    return {"total": stats.total}


@component
def sleeper(seconds: float) -> dict[str, float]:
    time.sleep(seconds)
    return {"slept": seconds}


@component
def compare(stats: Stats, baseline: Stats | None) -> dict[str, float | None]:
    return {"change": None if baseline is None else stats.total - baseline.total}


@component
def maybe(stats: Stats, present: bool) -> Stats | None:
    """``stats`` or nothing: an optional output."""
    return stats if present else None


@pipeline
def toy(n: int, log_dir: str, scale: float = 1.0) -> dict[str, object]:
    frame = make(n, log_dir)
    head, tail = halve(frame, log_dir)
    return {"head": total(head, log_dir, scale=scale), "tail": total(tail, log_dir)}


@pipeline
def toy_with_flaky(n: int, log_dir: str, failures: int, retries: int) -> None:
    stats = total(make(n, log_dir), log_dir)
    flaky.with_options(retries=retries, retry_delay_s=0.0)(stats, log_dir, failures=failures)


@pipeline
def toy_breaking(n: int, log_dir: str) -> None:
    stats = total(make(n, log_dir), log_dir)
    breaks_unless(stats, log_dir)
    total.with_options(name="after")(make(n + 1, log_dir), log_dir)


@pipeline
def toy_slow(seconds: float, timeout_s: float) -> None:
    sleeper.with_options(timeout_s=timeout_s)(seconds)


@pipeline
def toy_history(n: int, log_dir: str) -> None:
    stats = total(make(n, log_dir), log_dir)
    compare(stats, previous("total"))
