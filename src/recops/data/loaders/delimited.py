"""Read delimited text files fast, and still say which line of the file is wrong.

pandas' C parser reads a file in one go but forgets where each row came from, and
stops at the first line with too many fields. :func:`read_delimited` keeps the fast
path for good files and pays for a line-by-line scan only when it must: to locate
unparsable lines, or when quoted fields span several lines (then a row's line
number is no longer its position plus the header).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recops.data.errors import DataValidationError, Problem

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RawTable:
    """Cells of a text file as strings, with the line each row came from.

    Parameters
    ----------
    frame:
        One row per data record; every cell a string or missing. Blank lines are
        not rows.
    lines:
        Per row, the 1-based line of the file where the record starts (the header is
        line 1).
    source:
        The file name, for messages.
    unparsed:
        Lines skipped because they had more fields than the header (only with
        ``skip_invalid=True``; otherwise they raise).
    """

    frame: pd.DataFrame
    lines: np.ndarray
    source: str
    unparsed: tuple[Problem, ...] = ()


def read_delimited(
    path: str | Path,
    *,
    sep: str = ",",
    names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = True,
    skip_invalid: bool = False,
) -> RawTable:
    """Read a delimited text file as strings, keeping line numbers.

    Parameters
    ----------
    path:
        The file.
    sep:
        The field separator (one character).
    names:
        Column names for a file without a header row; ``None`` reads them from the
        first line.
    encoding:
        The text encoding of the file (MovieLens 100K is ``"latin-1"``).
    quoted:
        Whether ``"`` quotes fields (CSV). Tab- and pipe-separated dumps such as
        MIND and MovieLens use quotes as plain characters: pass ``False``.
    skip_invalid:
        Skip lines with more fields than the header instead of raising.

    Returns
    -------
    RawTable
        The cells, their line numbers and the skipped lines.

    Raises
    ------
    DataValidationError
        When the file is empty, not in ``encoding``, or (unless ``skip_invalid``) has
        lines with too many fields.
    """
    path = Path(path)
    source = path.name
    header_lines = 0 if names is not None else 1
    options: dict[str, Any] = {
        "sep": sep,
        "header": None if names is not None else 0,
        "names": list(names) if names is not None else None,
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        "skip_blank_lines": False,
        "quoting": csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
        "encoding": encoding,
    }
    unparsed: list[Problem] = []
    try:
        # The fast path reads the file itself, so a large file is not held twice.
        frame = pd.read_csv(path, engine="c", **options)
        record_lines = _record_lines(path, options, len(frame), header_lines)
    except UnicodeDecodeError:
        raise _encoding_error(path, encoding) from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(
            [Problem(source, None, None, "empty_file", "the file is empty: expected a header")]
        ) from None
    except pd.errors.ParserError:
        frame, record_lines, unparsed = _read_around_bad_lines(path, names, options)
        if not skip_invalid:
            raise DataValidationError(unparsed) from None
    blank = frame.isna().all(axis=1).to_numpy()
    frame = frame.loc[~blank].reset_index(drop=True)
    return RawTable(frame, record_lines[~blank], source, tuple(unparsed))


def _encoding_error(path: Path, encoding: str) -> DataValidationError:
    """Locate the first byte that is not ``encoding`` text (an error path only)."""
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as err:
        start = err.start
    else:  # pandas failed on something the codec accepts as a whole: name no byte.
        start = len(raw)
    return DataValidationError(
        [
            Problem(
                path.name,
                raw[:start].count(b"\n") + 1,
                None,
                "bad_encoding",
                f"not valid {encoding} text (byte {start}); pass the file's encoding",
            )
        ]
    )


def require_columns(table: RawTable, columns: Sequence[str]) -> None:
    """Raise a :class:`DataValidationError` naming each column the file lacks.

    Parameters
    ----------
    table:
        A table read by :func:`read_delimited` from a file with a header row.
    columns:
        The columns the caller needs.
    """
    missing = [c for c in columns if c not in table.frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in table.frame.columns)
        raise DataValidationError(
            [
                Problem(table.source, 1, c, "missing_column", f"missing column (found: {found})")
                for c in missing
            ]
        )


def _physical_lines(path: Path, encoding: str) -> int:
    """Lines in the file, counted in chunks (a last line without a newline counts)."""
    count, last = 0, "\n"
    with path.open(encoding=encoding, newline="") as handle:
        while chunk := handle.read(_CHUNK):
            count += chunk.count("\n")
            last = chunk[-1]
    return count + (0 if last == "\n" else 1)


def _record_lines(
    path: Path, options: dict[str, Any], n_rows: int, header_lines: int
) -> np.ndarray:
    """The first line of each data record."""
    if _physical_lines(path, options["encoding"]) == n_rows + header_lines:
        return np.arange(n_rows, dtype=np.int64) + header_lines + 1
    # Quoted fields with line breaks: only a real CSV scan knows where records start.
    starts, _ = _scan(path, options)
    return np.asarray(starts[header_lines:], dtype=np.int64)


def _scan(path: Path, options: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Per record, its first line and its number of fields (0 for a blank line)."""
    starts: list[int] = []
    widths: list[int] = []
    with path.open(encoding=options["encoding"], newline="") as handle:
        reader = csv.reader(handle, delimiter=options["sep"], quoting=options["quoting"])
        previous_end = 0
        for record in reader:
            starts.append(previous_end + 1)
            widths.append(len(record))
            previous_end = reader.line_num
    return starts, widths


def _read_around_bad_lines(
    path: Path, names: Sequence[str] | None, options: dict[str, Any]
) -> tuple[pd.DataFrame, np.ndarray, list[Problem]]:
    """Parse the good records of a file that has lines with too many fields."""
    starts, widths = _scan(path, options)
    if names is not None:
        expected, first = len(names), 0
    else:
        expected, first = widths[0], 1
    bad = [i for i in range(first, len(widths)) if widths[i] > expected]
    problems = [
        Problem(
            path.name,
            starts[i],
            None,
            "malformed_line",
            f"expected {expected} fields, got {widths[i]} (is the separator "
            f"{options['sep']!r} inside an unquoted value?)",
        )
        for i in bad
    ]
    frame = pd.read_csv(path, engine="c", on_bad_lines="skip", **options)
    bad_set = set(bad)
    good = [starts[i] for i in range(first, len(widths)) if i not in bad_set]
    return frame, np.asarray(good, dtype=np.int64), problems
