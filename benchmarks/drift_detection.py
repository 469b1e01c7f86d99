"""Does recops' drift monitor find injected drift, and stay quiet without it? On the world.

For each seed, a world (:mod:`recops.data.world`; 800 users, 1,600 items, 16 days) is
generated without a shock and with a population-wide interest shock of several
strengths (``shock_day`` 12, ``shock_category`` the catalog's largest category,
``shock_strength`` logits). Its logged traffic is written into a SQLite event log as the
server logs it (:func:`recops.monitoring.world.replay_world`), read back, and
:func:`recops.monitoring.monitor.monitor` compares days 12–16 (current) with days 7–11
(reference) with the default thresholds (PSI ≥ 0.1 and p < 0.01).

* **false-alarm rate**: share of shock-free worlds where ``should_retrain`` is set;
* **detection rate** at each strength: share of shocked worlds where it is set;
* per feature, the share of worlds where that feature drifted; every rate with its
  binomial standard error ``sqrt(p (1 − p) / n)``.

Two logging regimes: ``random`` (exploration 1: random slates, so clicks follow users'
interests and the catalog) and ``popularity`` (the world's default logging policy: 80%
of slates are the last hours' most-clicked items, so the click mix follows the day's
hits).

Usage::

    python benchmarks/drift_detection.py            # 10 seeds, ~6 minutes on 2 cores
    python benchmarks/drift_detection.py --quick    # 3 seeds, ~70 seconds
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from recops.data.world import World, WorldConfig, generate_world
from recops.monitoring.features import FEATURE_NAMES, Window
from recops.monitoring.logs import read_serving_log
from recops.monitoring.monitor import monitor
from recops.monitoring.world import replay_world
from recops.serving.eventlog import SQLiteEventLog

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "drift_detection.json"
DAY = 86_400
SHOCK_DAY = 12
REGIMES = {"random": 1.0, "popularity": WorldConfig().exploration}


def largest_category(config: WorldConfig) -> int:
    world = World.from_config(config)
    counts = world.catalog()["categories"].map(lambda c: c[0]).value_counts()
    return list(world.items.category_names).index(counts.index[0])


def one_world(config: WorldConfig, folder: Path) -> dict[str, object]:
    """The monitor's verdict and per-feature flags on one world."""
    world, data = generate_world(config)
    path = folder / f"{config.seed}-{config.exploration}-{config.shock_strength}.sqlite3"
    log = SQLiteEventLog(path, synchronous="NORMAL")
    try:
        replay_world(world, data.interactions, log)
    finally:
        log.close()
    start = config.start_time
    report = monitor(
        read_serving_log(path),
        current=Window(start + SHOCK_DAY * DAY, start + config.days * DAY, "log"),
        reference=Window(start + 7 * DAY, start + 11 * DAY, "log"),
        catalog=data.items,
    )
    path.unlink()
    return {
        "alarm": report.drift.should_retrain,
        "drifted": {f.feature: f.drifted for f in report.drift.features},
        "psi": {f.feature: f.psi for f in report.drift.features},
    }


def _rate(flags: list[bool]) -> dict[str, float]:
    p = float(np.mean(flags)) if flags else float("nan")
    return {"rate": p, "se": float(np.sqrt(p * (1 - p) / len(flags))), "n": len(flags)}


def run(seeds: list[int], strengths: list[float]) -> dict[str, object]:
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for regime, exploration in REGIMES.items():
            by_strength: dict[str, object] = {}
            for strength in [0.0, *strengths]:
                runs = []
                for seed in seeds:
                    base = WorldConfig(
                        n_users=800, n_items=1_600, days=16, seed=seed, exploration=exploration
                    )
                    config = base
                    if strength:
                        update = {
                            "shock_day": SHOCK_DAY,
                            "shock_category": largest_category(base),
                            "shock_strength": strength,
                        }
                        config = base.model_copy(update=update)
                    runs.append(one_world(config, Path(tmp)))
                by_strength[f"{strength:g}"] = {
                    "alarm": _rate([bool(r["alarm"]) for r in runs]),
                    "features": {
                        name: _rate([bool(r["drifted"][name]) for r in runs])  # type: ignore[index]
                        for name in FEATURE_NAMES
                    },
                    "max_psi": {
                        name: max(float(r["psi"][name] or 0.0) for r in runs)  # type: ignore[index]
                        for name in FEATURE_NAMES
                    },
                }
            out[regime] = by_strength
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, strengths 4 and 8.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seeds = list(range(3 if args.quick else 10))
    strengths = [4.0, 8.0] if args.quick else [2.0, 4.0, 6.0, 8.0]
    started = time.perf_counter()
    results = run(seeds, strengths)
    elapsed = time.perf_counter() - started
    for regime, by_strength in results.items():
        print(f"\n{regime} slates (exploration {REGIMES[regime]:g}), {len(seeds)} seeds")
        print(f"{'shock':>6} {'alarm rate':>12}   per feature (share of worlds that drifted)")
        for strength, row in by_strength.items():  # type: ignore[attr-defined]
            alarm = row["alarm"]
            name = "none" if strength == "0" else strength
            flags = ", ".join(
                f"{f} {v['rate']:.2f}" for f, v in row["features"].items() if v["rate"] > 0
            )
            print(f"{name:>6} {alarm['rate']:>6.2f} ± {alarm['se']:.2f}   {flags or '-'}")
    payload = {
        "command": "python benchmarks/drift_detection.py" + (" --quick" if args.quick else ""),
        "seeds": seeds,
        "world": {"n_users": 800, "n_items": 1_600, "days": 16, "shock_day": SHOCK_DAY},
        "windows": {"reference_days": [7, 11], "current_days": [SHOCK_DAY, 16]},
        "thresholds": {"psi": 0.1, "alpha": 0.01},
        "results": results,
        "elapsed_s": round(elapsed, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\n{elapsed:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
