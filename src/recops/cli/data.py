"""``recops data``: fetch public datasets, convert a user's files, describe a dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

if TYPE_CHECKING:
    from recops.data.schema import Dataset
    from recops.data.validation import ValidationReport

data_app = typer.Typer(
    help="Datasets: fetch the public ones, convert your own CSV/Parquet, describe one.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

# Exit code for bad input (the same code Click uses for usage errors).
BAD_INPUT = 2

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding the datasets (default: $RECOPS_DATA_DIR, else ~/.cache/recops/data).",
    ),
]


@contextmanager
def _user_errors(console: Console) -> Iterator[None]:
    """Turn input errors into a message and exit code 2 instead of a traceback."""
    from recops.data.errors import DataValidationError

    try:
        yield
    except (DataValidationError, FileNotFoundError, ValueError) as err:
        # markup=False: messages quote the user's data, which may contain "[...]".
        console.print(f"error: {err}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(BAD_INPUT) from None


def _err_console() -> Console:
    return Console(stderr=True)


@data_app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="ml-100k, ml-latest-small, mind-small or obd.")],
    data_dir: DataDirOption = None,
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="Expected SHA-256 of the archive.")
    ] = None,
    allow_unpinned: Annotated[
        bool,
        typer.Option(
            "--allow-unpinned", help="Accept an archive recops has no pinned checksum for."
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Download again if present.")] = False,
) -> None:
    """Download, verify and unpack a public dataset."""
    from recops.data.download import archive_for
    from recops.data.download import fetch as fetch_dataset

    console = Console()
    with _user_errors(_err_console()):
        archive = archive_for(name)
        console.print(f"{archive.name}: {archive.url}\nterms: {archive.terms}", highlight=False)
        folder = fetch_dataset(
            archive, data_dir, sha256=sha256, allow_unpinned=allow_unpinned, force=force
        )
    console.print(f"[green]ready:[/] {folder}", highlight=False)


@data_app.command("convert")
def convert(
    interactions: Annotated[
        Path, typer.Option("--interactions", help="Events file (CSV, TSV or Parquet).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the Parquet dataset to.")],
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="Catalog file: item_id, title, categories.")
    ] = None,
    users: Annotated[
        Path | None, typer.Option("--users", help="Users file: user_id plus features.")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="Rename a column: SOURCE=TARGET, e.g. userId=user_id."),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Drop invalid rows and report them.")
    ] = False,
    name: Annotated[str | None, typer.Option("--name", help="Dataset name.")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding.")] = "utf-8",
) -> None:
    """Validate your interactions (and catalog) and write them as a recops dataset."""
    from recops.data.loaders.tabular import load_tabular, parse_column_map

    console = Console()
    with _user_errors(_err_console()):
        columns = parse_column_map(mapping or [])
        dataset, reports = load_tabular(
            interactions,
            catalog,
            users,
            columns=columns,
            skip_invalid=skip_invalid,
            name=name,
            encoding=encoding,
        )
        folder = dataset.save(out)
    _print_reports(console, reports)
    console.print(_summary(dataset))
    console.print(f"[green]written:[/] {folder}", highlight=False)


@data_app.command("info")
def info(
    target: Annotated[str, typer.Argument(help="A dataset folder, or a public dataset's name.")],
    data_dir: DataDirOption = None,
) -> None:
    """Row counts, users, items and time range of a dataset."""
    console = Console()
    with _user_errors(_err_console()):
        dataset = _open(target, data_dir)
    console.print(_summary(dataset))
    if len(dataset.interactions):
        console.print(_events_table(dataset))


def _open(target: str, data_dir: Path | None) -> Dataset:
    from recops.data.download import ARCHIVES
    from recops.data.loaders.registry import load_dataset
    from recops.data.schema import Dataset

    path = Path(target)
    if path.is_dir():
        return Dataset.load(path)
    if target in ARCHIVES:
        return load_dataset(target, data_dir)
    raise FileNotFoundError(
        f"{target!r} is neither a dataset folder nor a dataset name ({', '.join(ARCHIVES)})"
    )


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _summary(dataset: Dataset) -> Table:
    from recops.data.schema import ITEM_ID, TIMESTAMP, USER_ID

    events = dataset.interactions
    table = Table(title=f"dataset {dataset.name}", title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("interactions", f"{len(events):,}"),
        ("users (in interactions)", f"{events[USER_ID].nunique():,}"),
        ("items (in interactions)", f"{events[ITEM_ID].nunique():,}"),
        ("items (catalog)", f"{len(dataset.items):,}"),
        ("users (table)", f"{len(dataset.users):,}"),
    ]
    if len(events):
        rows.append(("first event (UTC)", _iso(events[TIMESTAMP].min())))
        rows.append(("last event (UTC)", _iso(events[TIMESTAMP].max())))
    for label, value in rows:
        table.add_row(label, value)
    return table


def _events_table(dataset: Dataset) -> Table:
    from recops.data.schema import EVENT, VALUE

    grouped = dataset.interactions.groupby(EVENT)[VALUE].agg(["size", "mean", "min", "max"])
    table = Table(title="events", title_justify="left")
    for column in ("event", "rows", "mean value", "min", "max"):
        table.add_column(column, justify="left" if column == "event" else "right")
    fmt: Callable[[float], str] = "{:.4g}".format
    for event, row in grouped.iterrows():
        table.add_row(
            str(event), f"{int(row['size']):,}", fmt(row["mean"]), fmt(row["min"]), fmt(row["max"])
        )
    return table


def _print_reports(console: Console, reports: list[ValidationReport]) -> None:
    for report in reports:
        style = "green" if report.clean else "yellow"
        console.print(str(report), style=style, markup=False, highlight=False, soft_wrap=True)
