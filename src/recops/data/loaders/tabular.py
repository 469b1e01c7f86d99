"""A user's own interactions and catalog, from CSV or Parquet, with a column mapping.

Interactions need ``user_id``, ``item_id`` and ``timestamp`` (after renaming with
``columns``, e.g. ``{"userId": "user_id", "movieId": "item_id"}``); ``event``,
``value`` and ``rating`` are optional:

* with a ``rating`` column and no ``value``, ``value`` is the rating and the event
  defaults to ``"rating"`` (the rating column is then consumed);
* otherwise ``event`` defaults to ``"click"`` and ``value`` to 1.0.

Defaults fill absent columns only: an empty cell in a column the file has is a
problem that validation reports, never a guess.

A catalog needs ``item_id``; ``title``, ``categories`` (``|``-separated) and
``publish_time`` are optional, other columns are item features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recops.data.errors import DataValidationError, Problem
from recops.data.loaders.delimited import read_delimited
from recops.data.schema import (
    EVENT,
    ITEM_ID,
    TIMESTAMP,
    USER_ID,
    VALUE,
    Dataset,
    empty_items,
    empty_users,
)
from recops.data.validation import (
    DEFAULT_MAX_PROBLEMS,
    ValidationReport,
    validate_interactions,
    validate_items,
    validate_users,
)

RATING = "rating"
_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Table:
    """A table read from a file, with line numbers where the format has lines.

    Parameters
    ----------
    frame:
        The cells (strings for text files, typed for Parquet).
    source:
        The file name, for messages.
    lines:
        Per row, the 1-based line in the file; ``None`` for Parquet.
    unparsed:
        Lines of a text file that could not be parsed and were skipped.
    """

    frame: pd.DataFrame
    source: str
    lines: np.ndarray | None
    unparsed: tuple[Problem, ...] = ()


def parse_column_map(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Turn ``["userId=user_id", ...]`` into a mapping, naming a malformed pair.

    Parameters
    ----------
    pairs:
        ``SOURCE=TARGET`` strings.

    Returns
    -------
    dict
        ``{SOURCE: TARGET}``.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"a column mapping must look like 'userId=user_id' (got {pair!r})")
        mapping[source.strip()] = target.strip()
    return mapping


def read_table(
    path: str | Path, *, columns: Mapping[str, str] | None = None, encoding: str = "utf-8"
) -> Table:
    """Read a CSV, TSV or Parquet file and rename its columns.

    Parameters
    ----------
    path:
        The file; the suffix picks the format (``.csv``, ``.tsv``, ``.txt``,
        ``.parquet``, ``.pq``).
    columns:
        ``{name in the file: name in recops}``; names absent from the file are
        ignored, so one mapping can serve the interactions and the catalog.
    encoding:
        The text encoding of a text file.

    Returns
    -------
    Table
        The renamed cells. Unparsable lines are not raised here but listed in
        ``unparsed``, so that validation can report them with the other problems.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        table = Table(pd.read_parquet(path), path.name, None)
    elif suffix in _TEXT_SUFFIXES:
        raw = read_delimited(path, sep=_TEXT_SUFFIXES[suffix], encoding=encoding, skip_invalid=True)
        table = Table(raw.frame, raw.source, raw.lines, raw.unparsed)
    else:
        known = ", ".join([*_TEXT_SUFFIXES, *_PARQUET_SUFFIXES])
        raise ValueError(f"{path.name}: unknown file type {suffix!r} (expected one of {known})")
    if columns:
        renamed = table.frame.rename(columns=dict(columns))
        clash = renamed.columns[renamed.columns.duplicated()].tolist()
        if clash:
            raise DataValidationError(
                [
                    Problem(
                        table.source,
                        1 if table.lines is not None else None,
                        c,
                        "duplicate_column",
                        "two columns have this name after renaming with the column map",
                    )
                    for c in clash
                ]
            )
        table = Table(renamed, table.source, table.lines, table.unparsed)
    return table


def _validated(
    table: Table,
    validate: Callable[..., tuple[pd.DataFrame, ValidationReport]],
    frame: pd.DataFrame,
    skip_invalid: bool,
    **options: Any,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate ``frame`` (cells of ``table``) and fold in the table's unparsed lines.

    Without ``skip_invalid``, unparsable lines and invalid rows are raised together,
    in line order, so that one run shows everything to fix.
    """
    unparsed = list(table.unparsed)
    try:
        clean, report = validate(
            frame, source=table.source, lines=table.lines, skip_invalid=skip_invalid, **options
        )
    except DataValidationError as err:
        if not unparsed:
            raise
        problems = sorted([*unparsed, *err.problems], key=lambda p: p.line or 0)
        raise DataValidationError(
            problems[:DEFAULT_MAX_PROBLEMS], n_total=len(unparsed) + err.n_total
        ) from None
    if unparsed and not skip_invalid:
        raise DataValidationError(unparsed)
    return clean, report.with_unparsed(unparsed)


def _with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``event`` and ``value`` when the file has no such column."""
    out = frame.copy()
    has_rating = RATING in out.columns
    if VALUE not in out.columns:
        out[VALUE] = out.pop(RATING) if has_rating else 1.0
    if EVENT not in out.columns:
        out[EVENT] = "rating" if has_rating else "click"
    return out


def read_interactions(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    catalog: pd.DataFrame | None = None,
    skip_invalid: bool = False,
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate an interactions file (see the module notes for defaults).

    Parameters
    ----------
    path:
        A CSV, TSV or Parquet file.
    columns:
        ``{name in the file: name in recops}``.
    catalog:
        When given, events on items outside it are problems.
    skip_invalid:
        Drop bad rows and report them instead of raising.
    encoding:
        The text encoding of a text file.

    Returns
    -------
    interactions, report:
        Events in the schema, sorted by time, and what was skipped.
    """
    table = read_table(path, columns=columns, encoding=encoding)
    for required in (USER_ID, ITEM_ID, TIMESTAMP):
        if required not in table.frame.columns:
            found = ", ".join(repr(str(c)) for c in table.frame.columns)
            hint = (
                f"; say which column holds it with columns={{'NAME': '{required}'}} "
                f"(CLI: --map NAME={required})"
            )
            raise DataValidationError(
                [
                    Problem(
                        table.source,
                        1 if table.lines is not None else None,
                        required,
                        "missing_column",
                        f"missing column (found: {found}){hint}",
                    )
                ]
            )
    clean, report = _validated(
        table, validate_interactions, _with_defaults(table.frame), skip_invalid, catalog=catalog
    )
    return clean.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True), report


def read_catalog(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate a catalog file (``item_id``, optional ``title``, ...).

    Parameters
    ----------
    path:
        A CSV, TSV or Parquet file.
    columns:
        ``{name in the file: name in recops}``.
    skip_invalid:
        Drop bad rows and report them instead of raising.
    encoding:
        The text encoding of a text file.

    Returns
    -------
    items, report:
        The catalog in the schema and what was skipped.
    """
    table = read_table(path, columns=columns, encoding=encoding)
    return _validated(table, validate_items, table.frame, skip_invalid)


def read_users(
    path: str | Path,
    *,
    columns: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate a users file (``user_id`` plus features).

    Parameters
    ----------
    path:
        A CSV, TSV or Parquet file.
    columns:
        ``{name in the file: name in recops}``.
    skip_invalid:
        Drop bad rows and report them instead of raising.
    encoding:
        The text encoding of a text file.

    Returns
    -------
    users, report:
        The users in the schema and what was skipped.
    """
    table = read_table(path, columns=columns, encoding=encoding)
    return _validated(table, validate_users, table.frame, skip_invalid)


def load_tabular(
    interactions: str | Path,
    catalog: str | Path | None = None,
    users: str | Path | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    name: str | None = None,
    encoding: str = "utf-8",
) -> tuple[Dataset, list[ValidationReport]]:
    """Build a dataset from a user's files.

    Parameters
    ----------
    interactions:
        The events file.
    catalog:
        An optional catalog file; when given, every event must name one of its items.
    users:
        An optional users file (``user_id`` plus features).
    columns:
        ``{name in a file: name in recops}``, applied to every file.
    skip_invalid:
        Drop bad rows and report them instead of raising.
    name:
        The dataset name; default the interactions file's stem.
    encoding:
        The text encoding of text files.

    Returns
    -------
    dataset, reports:
        The dataset and one report per file read.
    """
    options: dict[str, Any] = {
        "columns": columns,
        "skip_invalid": skip_invalid,
        "encoding": encoding,
    }
    reports: list[ValidationReport] = []
    items = empty_items()
    if catalog is not None:
        items, report = read_catalog(catalog, **options)
        reports.append(report)
    events, report = read_interactions(
        interactions, catalog=items if catalog is not None else None, **options
    )
    reports.append(report)
    user_table = empty_users()
    if users is not None:
        user_table, report = read_users(users, **options)
        reports.append(report)
    dataset = Dataset(events, items, user_table, name=name or Path(interactions).stem)
    return dataset, reports
