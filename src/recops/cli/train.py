"""``recops train`` and ``recops recommend``: fit a two-tower model, export batch recommendations.

The artifact written by ``train`` carries the training events (as indices), so
``recommend`` rebuilds every known user's history from the model directory alone:
no second copy of the interactions file is needed, and seen items are excluded
from the complete training history, not only from the last ``max_history`` items.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from recops.cli.app import app

# Exit code for bad input (the same code Click uses for usage errors).
BAD_INPUT = 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn input errors into a one-line message and exit code 2 instead of a traceback."""
    from recops.data.errors import DataValidationError
    from recops.models.two_tower.artifact import ArtifactError

    try:
        yield
    except (DataValidationError, ArtifactError, FileNotFoundError, ValueError, KeyError) as err:
        # markup=False: messages quote the user's data, which may contain "[...]".
        Console(stderr=True).print(
            f"error: {err}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(BAD_INPUT) from None


def _read_config(path: Path | None, epochs: int | None, seed: int | None) -> dict[str, Any]:
    from pydantic import ValidationError

    from recops.config_files import describe_errors
    from recops.models.two_tower.config import TwoTowerConfig

    params: dict[str, Any] = {}
    if path is not None:
        try:
            params = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
        if not isinstance(params, dict):
            raise ValueError(f"{path}: expected a JSON object of TwoTower parameters")
        # Checked before the command-line options join, so an error names the file.
        try:
            TwoTowerConfig(**params)
        except ValidationError as err:
            raise ValueError(describe_errors(err, str(path))) from None
    if epochs is not None:
        params["epochs"] = epochs
    if seed is not None:
        params["seed"] = seed
    return params


@app.command()
def train(
    interactions: Annotated[
        Path, typer.Option("--interactions", help="CSV/TSV/Parquet: user_id,item_id,timestamp.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Optional catalog: item_id,title,categories,..."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="JSON file of TwoTower parameters.")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Maximum epochs.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
) -> None:
    """Train the multi-task two-tower model and save it as a model directory."""
    from recops.data.loaders import read_catalog, read_interactions
    from recops.data.schema import EVENT, IMPRESSION
    from recops.models.two_tower import TwoTower

    console = Console(stderr=True)
    with user_errors():
        params = _read_config(config, epochs, seed)
        items = read_catalog(catalog)[0] if catalog is not None else None
        events, _ = read_interactions(interactions, catalog=items)
        # Impression rows (a server's or a world's log) say what was shown, not what
        # was chosen: they feed the exposure correction, never the positives.
        shown = events[EVENT] == IMPRESSION
        impressions = events[shown] if shown.any() else None
        events = events[~shown]
        model = TwoTower(verbose=True, **params)
        seen = "" if impressions is None else f" and {len(impressions):,} impressions"
        console.print(
            f"training on {len(events):,} events{seen} from {interactions}", highlight=False
        )
        model.fit(events, items, impressions=impressions)
        model.save(out)
    summary = model.summary_
    console.print(
        f"saved {out}: {len(model.item_ids_):,} items, {len(model.user_ids_):,} users, "
        f"{summary.epochs_run} epochs (best {summary.best_epoch}) in {summary.seconds:.1f}s",
        highlight=False,
    )
    console.print(f"chosen on the validation window: {summary.choices()}", highlight=False)


def read_users(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    users = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    users = [u for u in users if u]
    if users and users[0] == "user_id":  # tolerate a one-column CSV with its header
        users = users[1:]
    if not users:
        raise ValueError(f"{path}: no user ids (expected one per line)")
    return users


@app.command()
def recommend(
    model_dir: Annotated[Path, typer.Option("--model", help="Model directory from `train`.")],
    users: Annotated[Path, typer.Option("--users", help="Text file: one user id per line.")],
    out: Annotated[Path, typer.Option("--out", help="CSV to write: user_id,rank,item_id,score.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Recommendations per user.")] = 100,
    include_seen: Annotated[
        bool, typer.Option("--include-seen", help="Also recommend items the user already had.")
    ] = False,
    now: Annotated[
        int | None,
        typer.Option("--now", help="Unix time of the request (default: after the last event)."),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", help="Users scored per step.")] = 1024,
) -> None:
    """Batch export: top-k items for every user in a file, from their training history."""
    import pandas as pd
    from rich.progress import track

    from recops.models.base import validate_k
    from recops.models.two_tower import TwoTower

    with user_errors():
        k = validate_k(k)
        if batch < 1:
            raise ValueError(f"`--batch` must be a positive int (got {batch})")
        user_ids = read_users(users)
        model = TwoTower.load(model_dir)
        parts = [
            model.recommend(user_ids[i : i + batch], k, exclude_seen=not include_seen, now=now)
            for i in track(range(0, len(user_ids), batch), description="recommending")
        ]
        frame = pd.concat(parts, ignore_index=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
    Console(stderr=True).print(f"wrote {len(frame):,} rows to {out}", highlight=False)
