"""Bytes per item of a fitted two-tower model, by part: the basis of docs/scaling.md.

Fits the default model (``dim = 64``) on the built-in world at two catalog sizes and
sums every NumPy array and torch tensor it holds (the network's weights, the served
tables, the time prior's counts, the training events) plus an estimate of its id maps
(Python dicts: ~150 bytes per entry with its string key). The per-item bytes of the
parts that grow with the catalog are those of the larger size.

Usage::

    python benchmarks/model_memory.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from recops.data.world import WorldConfig, generate_world
from recops.models.two_tower import TwoTower

RESULTS = Path(__file__).parent / "results" / "model_memory.json"
DICT_ENTRY = 150  # bytes per dict entry with a short string key (CPython, measured order)


def parts(model: TwoTower) -> dict[str, int]:
    """Bytes of each array, tensor and large dict reachable from the model (no double counts)."""
    found: dict[str, int] = {}
    seen: set[int] = set()

    def walk(obj: Any, name: str, depth: int) -> None:
        if id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            found[name] = obj.nbytes + (sys.getsizeof("x" * 8) * obj.size if obj.dtype == object
                                        else 0)  # fmt: skip
        elif isinstance(obj, torch.Tensor):
            found[name] = obj.numel() * obj.element_size()
        elif isinstance(obj, torch.nn.Module):
            for key, value in obj.state_dict().items():
                found[f"{name}.{key}"] = value.numel() * value.element_size()
        elif isinstance(obj, dict):
            found[name] = len(obj) * DICT_ENTRY
        elif hasattr(obj, "__dict__"):
            for key, value in vars(obj).items():
                walk(value, f"{name}.{key}", depth + 1)

    walk(model, "model", 0)
    return found


def main() -> None:
    console = Console()
    sizes = (4_000, 16_000)
    measured = {}
    for n_items in sizes:
        _, data = generate_world(WorldConfig(n_users=1_000, n_items=n_items, days=5, seed=0))
        model = TwoTower(epochs=1, num_threads=2, seed=0).fit(data.interactions, data.items)
        measured[n_items] = (parts(model), len(model.item_ids_))
    small, large = measured[sizes[0]][0], measured[sizes[1]][0]
    n_large = measured[sizes[1]][1]
    # What grows with the catalog: the part's growth between the sizes, per added item.
    n_small = measured[sizes[0]][1]
    rows = []
    for name, size in sorted(large.items(), key=lambda kv: -kv[1]):
        per_item = (size - small.get(name, 0)) / (n_large - n_small)
        if per_item >= 1:
            rows.append({"part": name, "bytes": size, "bytes_per_item": per_item})
    table = Table(title=f"two-tower, dim 64: bytes per catalog item ({n_large:,} items)")
    for column in ("part", "MB at this size", "bytes per item"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for r in rows:
        table.add_row(r["part"], f"{r['bytes'] / 1e6:.2f}", f"{r['bytes_per_item']:.0f}")
    total = sum(r["bytes_per_item"] for r in rows)
    table.add_row("total", f"{sum(large.values()) / 1e6:.1f}", f"{total:.0f}")
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"items": n_large, "parts": rows, "per_item": total}, indent=2))
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
