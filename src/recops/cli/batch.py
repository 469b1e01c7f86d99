"""``recops batch``: a trained model's batch jobs, in this process or on Ray Data.

``embed`` writes every catalog item's vector (trained, or from its content for items
the model never saw); ``recommend`` writes every listed user's top ``k``. Both write
a folder of Parquet parts (:mod:`recops.pipelines.batch`); ``--ray-workers N`` runs
the chunks on N Ray Data actors (a local Ray instance unless ``RAY_ADDRESS`` names a
cluster). Bad input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from recops.cli.app import app
from recops.cli.train import read_users, user_errors

if TYPE_CHECKING:
    from recops.pipelines.batch import BatchResult

batch_app = typer.Typer(
    help="Batch jobs of a trained model: catalog embedding and recommendation export, "
    "in this process or on Ray Data.",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")

ModelOption = Annotated[Path, typer.Option("--model", help="Model directory (`recops train`).")]
OutOption = Annotated[Path, typer.Option("--out", help="Folder of Parquet parts (replaced).")]
WorkersOption = Annotated[
    int | None,
    typer.Option("--ray-workers", min=1, help="Ray Data actors (default: in this process)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _report(result: BatchResult, what: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    where = "in this process" if result.workers is None else f"on {result.workers} Ray workers"
    Console(stderr=True).print(
        f"{what}: {result.inputs:,} in {result.seconds:.1f} s ({result.per_second:,.0f}/s, "
        f"{where}); {result.rows:,} rows in {result.out}",
        highlight=False,
    )


@batch_app.command("embed")
def embed(
    model_dir: ModelOption,
    catalog: Annotated[
        Path, typer.Option("--catalog", help="Catalog CSV/TSV/Parquet: item_id, title, ...")
    ],
    out: OutOption,
    ray_workers: WorkersOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Items per chunk.")] = 8_192,
    as_json: JsonOption = False,
) -> None:
    """Embed every catalog item: item_id and its unit vector, for an ANN index."""
    from recops.data.loaders import read_catalog
    from recops.pipelines.batch import embed_catalog

    with user_errors():
        items, _ = read_catalog(catalog)
        result = embed_catalog(model_dir, items, out, workers=ray_workers, batch_size=batch_size)
    _report(result, "embedded items", as_json)


@batch_app.command("recommend")
def recommend(
    model_dir: ModelOption,
    users: Annotated[Path, typer.Option("--users", help="Text file: one user id per line.")],
    out: OutOption,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Recommendations per user.")] = 100,
    include_seen: Annotated[
        bool, typer.Option("--include-seen", help="Also recommend items the user already had.")
    ] = False,
    now: Annotated[
        int | None, typer.Option(help="Unix time of the request (default: after the last event).")
    ] = None,
    ray_workers: WorkersOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Users per chunk.")] = 1_024,
    as_json: JsonOption = False,
) -> None:
    """Export every listed user's top k: user_id, rank, item_id, score."""
    from recops.pipelines.batch import export_recommendations

    with user_errors():
        result = export_recommendations(
            model_dir, read_users(users), out, k=k, exclude_seen=not include_seen, now=now,
            workers=ray_workers, batch_size=batch_size,
        )  # fmt: skip
    _report(result, "recommended for users", as_json)
