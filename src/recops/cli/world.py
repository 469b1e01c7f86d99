"""``recops world``: generate the built-in simulated news site as a Parquet dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

if TYPE_CHECKING:
    from recops.data.schema import Dataset
    from recops.data.world import WorldConfig

world_app = typer.Typer(
    help="The built-in world: a simulated news site with known click behaviour.",
    no_args_is_help=True,
)
app.add_typer(world_app, name="world")

CONFIG_FILE = "world_config.json"


@world_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the Parquet files into.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", help="WorldConfig as JSON; the flags below override it."),
    ] = None,
    users: Annotated[int | None, typer.Option("--users", help="Number of users.")] = None,
    items: Annotated[int | None, typer.Option("--items", help="Number of items.")] = None,
    days: Annotated[int | None, typer.Option("--days", help="Days simulated.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    catalog_only: Annotated[
        bool, typer.Option("--catalog-only", help="Write only items.parquet (fast, for 1M items).")
    ] = False,
) -> None:
    """Write interactions, items and users Parquet files plus the config used."""
    from recops.data.world import WorldConfigError, generate_catalog, generate_world

    console = Console()
    overrides = {"n_users": users, "n_items": items, "days": days, "seed": seed}
    try:
        cfg = _resolve_config(config, {k: v for k, v in overrides.items() if v is not None})
    except WorldConfigError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(code=2) from None

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data = None
    if catalog_only:
        generate_catalog(cfg).to_parquet(out / "items.parquet", index=False)
    else:
        _, data = generate_world(cfg, progress=True)
        data.save(out)
    cfg.to_json(out / CONFIG_FILE)
    console.print(_summary(cfg, data, time.perf_counter() - started, out))


@world_app.command("config")
def show_config(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON here instead of printing it.")
    ] = None,
) -> None:
    """Print (or write) the default WorldConfig as JSON, a starting point for --config."""
    from recops.data.world import WorldConfig

    cfg = WorldConfig()
    if out is None:
        typer.echo(cfg.model_dump_json(indent=2))
    else:
        cfg.to_json(out)
        typer.echo(f"wrote {out}")


def _resolve_config(path: Path | None, overrides: dict[str, Any]) -> WorldConfig:
    from recops.data.world import WorldConfig

    if path is None:
        return WorldConfig.from_dict(overrides, source="command-line flags")
    base = WorldConfig.from_json(path).model_dump()
    return WorldConfig.from_dict({**base, **overrides}, source=f"{path} with command-line flags")


def _summary(cfg: WorldConfig, data: Dataset | None, elapsed: float, out: Path) -> Table:
    """A table of what was generated; ``data`` is None when only the catalog was."""
    table = Table(title=f"recops world (seed {cfg.seed}) → {out}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("items", f"{cfg.n_items:,}")
    table.add_row("categories", f"{cfg.n_categories}")
    if data is not None:
        ix = data.interactions
        shown = ix[ix["event"] == "impression"]
        by_position = shown.groupby("position")["value"].mean()
        table.add_row("users", f"{cfg.n_users:,}")
        table.add_row("days", f"{cfg.days}")
        table.add_row("requests", f"{shown['request_id'].nunique():,}")
        table.add_row("impressions", f"{len(shown):,}")
        table.add_row("clicks", f"{int((ix['event'] == 'click').sum()):,}")
        table.add_row("CTR", f"{shown['value'].mean():.4f}" if len(shown) else "n/a")
        for position in by_position.index[:3]:
            table.add_row(f"CTR at slot {position}", f"{by_position[position]:.4f}")
    table.add_row("seconds", f"{elapsed:.1f}")
    return table
