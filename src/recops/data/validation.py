"""Check tables against the recops schema and coerce them to its dtypes.

Each ``validate_*`` function runs every check on the whole table at once (vectorised)
and then either raises one :class:`~recops.data.errors.DataValidationError` that lists
the first problems with their file, line and field, or, with ``skip_invalid=True``,
drops the offending rows and says so in a :class:`ValidationReport`. Nothing is
dropped silently.

Coercions (what the rest of recops may rely on afterwards):

* ids: non-empty strings, surrounding blanks removed; integral numbers become
  ``"12"``, not ``"12.0"``;
* ``timestamp`` / ``publish_time``: int64 unix seconds; numbers (fractions of a
  second are floored) and ISO-8601 dates (UTC unless an offset is given) are
  accepted; values of 1e11 or more are refused because they are almost always
  milliseconds;
* ``value``: finite float64; ``event``: a lower-case token (``click``, ``rating``...);
* ``categories``: a list of strings (a ``|``-separated string is split).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from recops.data.errors import DataValidationError, Problem
from recops.data.schema import (
    CATEGORIES,
    EVENT,
    EVENT_TYPES,
    ITEM_ID,
    PUBLISH_TIME,
    TIMESTAMP,
    TITLE,
    USER_ID,
    VALUE,
)

DEFAULT_MAX_PROBLEMS = 20
MAX_EXAMPLES_PER_REASON = 5
# 1e11 s is the year 5138; a larger "unix time" is a millisecond or microsecond one.
_MAX_UNIX_SECONDS = 100_000_000_000


def check_unix_seconds(values: np.ndarray, what: str) -> None:
    """Raise a ValueError naming ``what`` when times look like milliseconds (>= 1e11)."""
    arr = np.asarray(values)
    if len(arr) and np.abs(arr).max() >= _MAX_UNIX_SECONDS:
        raise ValueError(
            f"{what} must be unix seconds, got {int(np.abs(arr).max())} "
            "(that looks like milliseconds: divide by 1000)"
        )


_EVENT_TOKEN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class ValidationReport:
    """What validation kept and what it skipped, by reason.

    Parameters
    ----------
    source:
        The file (or table) validated.
    n_rows:
        Rows read.
    n_kept:
        Rows that passed every check.
    skipped:
        Per reason (``"bad_timestamp"``, ``"duplicate_row"``...), how many rows had
        that problem. A row with two problems counts under both reasons, so the
        counts may add up to more than ``n_skipped``.
    examples:
        Per reason, the first few problems, located by line and field.
    """

    source: str
    n_rows: int = 0
    n_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, tuple[Problem, ...]] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Rows dropped."""
        return self.n_rows - self.n_kept

    @property
    def clean(self) -> bool:
        """True when nothing was skipped."""
        return self.n_skipped == 0

    def with_unparsed(self, problems: Sequence[Problem]) -> ValidationReport:
        """This report plus lines the file reader could not parse at all.

        Parameters
        ----------
        problems:
            One problem per unparsable line (they never reached validation).

        Returns
        -------
        ValidationReport
            A new report whose ``n_rows`` includes those lines.
        """
        if not problems:
            return self
        skipped = dict(self.skipped)
        examples = dict(self.examples)
        for reason in sorted({p.reason for p in problems}):
            of_reason = [p for p in problems if p.reason == reason]
            skipped[reason] = skipped.get(reason, 0) + len(of_reason)
            examples[reason] = (*examples.get(reason, ()), *of_reason)[:MAX_EXAMPLES_PER_REASON]
        return replace(self, n_rows=self.n_rows + len(problems), skipped=skipped, examples=examples)

    def __str__(self) -> str:
        head = f"{self.source}: kept {self.n_kept:,} of {self.n_rows:,} rows"
        if self.clean:
            return head
        lines = [f"{head}, skipped {self.n_skipped:,}:"]
        for reason, count in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {reason}: {count:,} row{'' if count == 1 else 's'}, e.g.")
            lines.extend(f"    {p}" for p in self.examples.get(reason, ()))
        return "\n".join(lines)


@dataclass(frozen=True)
class _Finding:
    """Rows that fail one check, and how to describe the failure of one of them."""

    reason: str
    field: str | None
    mask: np.ndarray
    describe: Callable[[int], str]


@dataclass(frozen=True)
class _Locator:
    """Turns a row position into a :class:`Problem` located in the user's file."""

    source: str
    lines: np.ndarray | None

    def problem(self, position: int, finding: _Finding) -> Problem:
        line = None if self.lines is None else int(self.lines[position])
        return Problem(
            source=self.source,
            line=line,
            field=finding.field,
            reason=finding.reason,
            message=finding.describe(position),
            row=position,
        )

    def where(self, position: int) -> str:
        """How a user finds a row: by line in a file, by position in a frame."""
        if self.lines is None:
            return f"row {position}"
        return f"line {int(self.lines[position])}"

    def header_problem(self, field_name: str, reason: str, message: str) -> Problem:
        return Problem(
            source=self.source,
            line=None if self.lines is None else 1,
            field=field_name,
            reason=reason,
            message=message,
        )


def _is_missing(value: object) -> bool:
    """None, NaN, NA or NaT (a scalar; lists are never missing)."""
    if value is None or not pd.api.types.is_scalar(value):
        return value is None
    return bool(pd.isna(value))  # type: ignore[call-overload]


def _shown(value: object) -> str:
    """A cell as the user wrote it, for messages; long text is cut."""
    if _is_missing(value):
        return "an empty value"
    text = repr(str(value))
    return text if len(text) <= 60 else text[:57] + "...'"


def _text(series: pd.Series) -> pd.Series:
    """Cells as stripped strings (pandas' string dtype); missing cells stay missing."""
    if pd.api.types.is_float_dtype(series.dtype):
        # Ids read as floats (a numeric column with gaps) must read "12", not "12.0".
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        cells = np.full(len(arr), None, dtype=object)
        integral = np.isfinite(arr) & (np.floor(arr) == arr)
        other = ~integral & ~np.isnan(arr)
        cells[integral] = arr[integral].astype(np.int64).astype(str)
        cells[other] = arr[other].astype(str)
        series = pd.Series(cells, index=series.index, dtype=object)
    # pandas 3 keeps missing cells missing in astype(str), and its Arrow-backed
    # strings make the .str methods below vectorised.
    return series.astype(str).str.strip()


def coerce_ids(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Ids as stripped strings, and which rows have an empty id.

    Parameters
    ----------
    series:
        Raw ids (strings or numbers).

    Returns
    -------
    ids, bad:
        The ids as strings and a boolean mask of missing or blank ids.
    """
    ids = _text(series)
    bad = (ids.isna() | (ids == "")).to_numpy(dtype=bool)
    return ids, bad


def coerce_unix_seconds(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Times as int64 unix seconds, and which rows could not be read as a time.

    Parameters
    ----------
    series:
        Numbers of unix seconds, numeric strings, ISO-8601 strings or datetimes.

    Returns
    -------
    seconds, bad:
        A nullable ``Int64`` series (missing where unreadable or empty) and a mask of
        rows that had a value that is not a time. Empty cells are *not* in ``bad``;
        callers decide whether a time is required.
    """
    n = len(series)
    seconds = np.zeros(n, dtype=np.int64)
    known = np.zeros(n, dtype=bool)
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        series.dtype
    ):
        stamps = pd.to_datetime(series, utc=True)
        known = stamps.notna().to_numpy()
        seconds[known] = (stamps[known] - _EPOCH) // pd.Timedelta(seconds=1)
        return pd.Series(seconds, index=series.index, dtype="Int64").where(known), np.zeros(n, bool)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype(np.float64).to_numpy()
        empty = np.isnan(numbers)
    else:
        text = _text(series)
        empty = (text.isna() | (text == "")).to_numpy()
        numbers = pd.to_numeric(text, errors="coerce").astype(np.float64).to_numpy()
        as_date = np.isnan(numbers) & ~empty
        if as_date.any():
            stamps = pd.to_datetime(text[as_date], format="ISO8601", utc=True, errors="coerce")
            parsed = stamps.notna().to_numpy()
            idx = np.flatnonzero(as_date)[parsed]
            seconds[idx] = (stamps[parsed] - _EPOCH) // pd.Timedelta(seconds=1)
            known[idx] = True
    finite = np.isfinite(numbers) & (np.abs(np.nan_to_num(numbers)) < _MAX_UNIX_SECONDS)
    seconds[finite] = np.floor(numbers[finite]).astype(np.int64)
    known |= finite
    bad = ~known & ~empty
    return pd.Series(seconds, index=series.index, dtype="Int64").where(known), bad


def _timestamp_problem(raw: pd.Series) -> Callable[[int], str]:
    def describe(i: int) -> str:
        got = raw.iloc[i]
        number = np.nan if _is_missing(got) else pd.to_numeric(got, errors="coerce")
        if np.isfinite(number) and abs(float(number)) >= _MAX_UNIX_SECONDS:
            return (
                f"expected unix time in seconds, got {_shown(got)} "
                "(that looks like milliseconds: divide by 1000)"
            )
        return f"expected an integer unix time or ISO date, got {_shown(got)}"

    return describe


def _check_required(frame: pd.DataFrame, required: Iterable[str], locator: _Locator) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise DataValidationError(
            [
                locator.header_problem(c, "missing_column", f"missing column (found: {found})")
                for c in missing
            ]
        )


def _id_finding(raw: pd.Series, name: str) -> tuple[pd.Series, _Finding]:
    ids, bad = coerce_ids(raw)
    return ids, _Finding(
        "empty_id", name, bad, lambda i: f"expected a non-empty id, got {_shown(raw.iloc[i])}"
    )


def _duplicate_finding(
    frame: pd.DataFrame,
    candidates: np.ndarray,
    subset: Sequence[str],
    reason: str,
    field_name: str | None,
    describe_first: Callable[[int], str],
) -> _Finding:
    """Rows (among ``candidates``) equal on ``subset`` to an earlier candidate row.

    ``describe_first`` turns the position of the earlier row into the message.
    """
    mask = np.zeros(len(frame), dtype=bool)
    first_of: dict[int, int] = {}
    if candidates.any():
        positions = np.flatnonzero(candidates)
        rows = frame[list(subset)]
        # Taking rows copies every string column; skip it when all rows take part.
        rows = rows if len(positions) == len(frame) else rows.iloc[positions]
        # Exact grouping (not hashing), so that no two different rows can collide.
        group = rows.groupby(list(subset), sort=False, dropna=False).ngroup().to_numpy()
        _, first_index = np.unique(group, return_index=True)
        dup = first_index[group] != np.arange(len(group))
        mask[positions[dup]] = True
        first_of = dict(
            zip(positions[dup].tolist(), positions[first_index[group[dup]]].tolist(), strict=True)
        )
    return _Finding(reason, field_name, mask, lambda i: describe_first(first_of[i]))


def _resolve(
    frame: pd.DataFrame,
    findings: Sequence[_Finding],
    locator: _Locator,
    skip_invalid: bool,
    max_problems: int,
) -> tuple[np.ndarray, ValidationReport]:
    """Raise for the findings, or return the mask of rows to keep and the report."""
    n = len(frame)
    bad = np.zeros(n, dtype=bool)
    for f in findings:
        bad |= f.mask
    if not skip_invalid and bad.any():
        problems = [
            locator.problem(int(i), f)
            for f in findings
            for i in np.flatnonzero(f.mask)[:max_problems]
        ]
        problems.sort(key=lambda p: p.row if p.row is not None else -1)
        total = int(sum(int(f.mask.sum()) for f in findings))
        raise DataValidationError(problems[:max_problems], n_total=total, max_shown=max_problems)
    skipped: dict[str, int] = {}
    examples: dict[str, tuple[Problem, ...]] = {}
    for f in findings:
        count = int(f.mask.sum())
        if count:
            skipped[f.reason] = skipped.get(f.reason, 0) + count
            found = tuple(
                locator.problem(int(i), f) for i in np.flatnonzero(f.mask)[:MAX_EXAMPLES_PER_REASON]
            )
            examples[f.reason] = (*examples.get(f.reason, ()), *found)[:MAX_EXAMPLES_PER_REASON]
    report = ValidationReport(locator.source, n, int(n - bad.sum()), skipped, examples)
    return ~bad, report


def _kept(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows to keep, with a fresh index; no copy of the rows when all are kept."""
    kept = frame if keep.all() else frame.loc[keep]
    return kept.reset_index(drop=True)


def _locator(
    frame: pd.DataFrame, source: str | None, lines: Sequence[int] | np.ndarray | None
) -> _Locator:
    if lines is not None and len(lines) != len(frame):
        raise ValueError(
            f"`lines` must have one line number per row ({len(frame)}), got {len(lines)}"
        )
    return _Locator(
        source or "<DataFrame>", None if lines is None else np.asarray(lines, dtype=np.int64)
    )


def _check_max_problems(max_problems: object) -> int:
    if isinstance(max_problems, bool) or not isinstance(max_problems, int) or max_problems < 1:
        raise ValueError(f"`max_problems` must be a positive int (got {max_problems!r})")
    return max_problems


def validate_interactions(
    frame: pd.DataFrame,
    *,
    source: str | None = None,
    lines: Sequence[int] | np.ndarray | None = None,
    catalog: pd.DataFrame | Collection[str] | None = None,
    events: Collection[str] | None = None,
    duplicates: bool = True,
    skip_invalid: bool = False,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check interactions and coerce them to the schema dtypes.

    Parameters
    ----------
    frame:
        Events with the columns ``user_id``, ``item_id``, ``event``, ``value`` and
        ``timestamp``; other columns are context and are carried along untouched.
    source:
        The file the rows came from, for messages.
    lines:
        Per row, its 1-based line number in ``source`` (header counted). Without it
        problems are located by row position.
    catalog:
        The known items (a catalog frame or a collection of item ids). When given, an
        event on an item outside it is a problem (``unknown_item``).
    events:
        The allowed event names. Default: any lower-case token such as ``click``,
        ``rating`` or ``add_to_cart`` (see :data:`recops.data.schema.EVENT_TYPES`).
    duplicates:
        Treat a row equal (on every column) to an earlier one as a problem
        (``duplicate_row``). Turn it off for logs whose source times are finer than
        seconds, where equal rows after rounding are distinct events.
    skip_invalid:
        Drop rows with problems and report them instead of raising.
    max_problems:
        How many problems an error spells out.

    Returns
    -------
    clean, report:
        The valid rows in the input order with a fresh index, and what was skipped.

    Raises
    ------
    DataValidationError
        On a missing column, and, unless ``skip_invalid``, on any invalid row.
    """
    max_problems = _check_max_problems(max_problems)
    locator = _locator(frame, source, lines)
    _check_required(frame, (USER_ID, ITEM_ID, EVENT, VALUE, TIMESTAMP), locator)
    users, user_finding = _id_finding(frame[USER_ID], USER_ID)
    items, item_finding = _id_finding(frame[ITEM_ID], ITEM_ID)
    times, bad_time = coerce_unix_seconds(frame[TIMESTAMP])
    raw_event = frame[EVENT]
    event_text = _text(raw_event).str.lower()
    allowed = frozenset(events) if events is not None else None
    # A log has a handful of distinct events: check those, not every row.
    distinct = event_text.dropna().unique()
    if allowed is None:
        valid = [e for e in distinct if _EVENT_TOKEN.fullmatch(e)]
        expected_event = "a lower-case event name such as " + ", ".join(sorted(EVENT_TYPES)[:4])
    else:
        valid = [e for e in distinct if e in allowed]
        expected_event = "one of " + ", ".join(sorted(allowed))
    good_event = event_text.isin(valid).to_numpy(dtype=bool)
    values = pd.to_numeric(frame[VALUE], errors="coerce").astype(np.float64)
    findings = [
        user_finding,
        item_finding,
        _Finding(
            "bad_timestamp",
            TIMESTAMP,
            bad_time | times.isna().to_numpy(),
            _timestamp_problem(frame[TIMESTAMP]),
        ),
        _Finding(
            "bad_event",
            EVENT,
            ~good_event,
            lambda i: f"expected {expected_event}, got {_shown(raw_event.iloc[i])}",
        ),
        _Finding(
            "bad_value",
            VALUE,
            ~np.isfinite(values.to_numpy()),
            lambda i: f"expected a finite number, got {_shown(frame[VALUE].iloc[i])}",
        ),
    ]
    if catalog is not None:
        known = catalog[ITEM_ID] if isinstance(catalog, pd.DataFrame) else list(catalog)
        known_ids = set(coerce_ids(pd.Series(known, dtype=object))[0].dropna())
        unknown = ~items.isin(known_ids).to_numpy(dtype=bool) & ~item_finding.mask
        findings.append(
            _Finding(
                "unknown_item",
                ITEM_ID,
                unknown,
                lambda i: f"item {items.iloc[i]!r} is not in the catalog",
            )
        )
    coerced = frame.copy()
    coerced[USER_ID] = users
    coerced[ITEM_ID] = items
    coerced[EVENT] = event_text
    coerced[VALUE] = values
    coerced[TIMESTAMP] = times
    ok_so_far = ~np.logical_or.reduce([f.mask for f in findings])
    if duplicates:
        findings.append(
            _duplicate_finding(
                coerced,
                ok_so_far,
                _hashable_columns(coerced),
                "duplicate_row",
                None,
                lambda first: f"duplicate of {locator.where(first)}",
            )
        )
    keep, report = _resolve(frame, findings, locator, skip_invalid, max_problems)
    clean = _kept(coerced, keep)
    clean[TIMESTAMP] = clean[TIMESTAMP].astype(np.int64)
    clean[USER_ID] = clean[USER_ID].astype(str)
    clean[ITEM_ID] = clean[ITEM_ID].astype(str)
    clean[EVENT] = clean[EVENT].astype(str)
    return clean, report


def _hashable_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose cells can be hashed (lists and arrays cannot)."""
    cols = []
    for c in frame.columns:
        if pd.api.types.is_object_dtype(frame[c].dtype):
            sample = frame[c].dropna().head(100)
            if any(isinstance(v, list | tuple | np.ndarray | dict | set) for v in sample):
                continue
        cols.append(c)
    return cols


def coerce_categories(series: pd.Series) -> pd.Series:
    """Categories as lists of strings; a string is split on ``|``, empties dropped."""

    def to_list(v: object) -> list[str]:
        if isinstance(v, str):
            parts: Iterable[object] = v.split("|")
        elif isinstance(v, list | tuple | np.ndarray):
            parts = v
        else:
            return []
        return [str(p).strip() for p in parts if p is not None and str(p).strip()]

    return series.map(to_list).astype(object)


def validate_items(
    frame: pd.DataFrame,
    *,
    source: str | None = None,
    lines: Sequence[int] | np.ndarray | None = None,
    skip_invalid: bool = False,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a catalog and coerce it to the schema.

    Parameters
    ----------
    frame:
        The catalog; ``item_id`` is required, ``title`` (default ``""``),
        ``categories`` (list or ``|``-separated string; default ``[]``) and
        ``publish_time`` (unix seconds or ISO date; default missing) are optional.
        Other columns are kept as item features.
    source, lines, skip_invalid, max_problems:
        As in :func:`validate_interactions`.

    Returns
    -------
    clean, report:
        The valid items with the schema columns first, and what was skipped.

    Raises
    ------
    DataValidationError
        On a missing ``item_id`` column, an empty or repeated item id, or a
        ``publish_time`` that is not a time (unless ``skip_invalid``).
    """
    max_problems = _check_max_problems(max_problems)
    locator = _locator(frame, source, lines)
    _check_required(frame, (ITEM_ID,), locator)
    ids, id_finding = _id_finding(frame[ITEM_ID], ITEM_ID)
    coerced = frame.copy()
    coerced[ITEM_ID] = ids
    n = len(frame)
    titles = frame[TITLE] if TITLE in frame else pd.Series([""] * n, index=frame.index)
    coerced[TITLE] = _text(titles).fillna("").astype(str)
    cats = frame[CATEGORIES] if CATEGORIES in frame else pd.Series([None] * n, index=frame.index)
    coerced[CATEGORIES] = coerce_categories(cats)
    findings = [id_finding]
    if PUBLISH_TIME in frame:
        times, bad_time = coerce_unix_seconds(frame[PUBLISH_TIME])
        coerced[PUBLISH_TIME] = times
        findings.append(
            _Finding(
                "bad_publish_time", PUBLISH_TIME, bad_time, _timestamp_problem(frame[PUBLISH_TIME])
            )
        )
    else:
        coerced[PUBLISH_TIME] = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    findings.append(_repeated_id(coerced, ITEM_ID, id_finding.mask, locator))
    keep, report = _resolve(frame, findings, locator, skip_invalid, max_problems)
    clean = _kept(coerced, keep)
    clean[ITEM_ID] = clean[ITEM_ID].astype(str)
    ordered = [ITEM_ID, TITLE, CATEGORIES, PUBLISH_TIME]
    return clean[ordered + [c for c in clean.columns if c not in ordered]], report


def _repeated_id(
    coerced: pd.DataFrame, column: str, empty: np.ndarray, locator: _Locator
) -> _Finding:
    return _duplicate_finding(
        coerced,
        ~empty,
        [column],
        "duplicate_id",
        column,
        lambda first: f"{coerced[column].iloc[first]!r} already given on {locator.where(first)}",
    )


def validate_users(
    frame: pd.DataFrame,
    *,
    source: str | None = None,
    lines: Sequence[int] | np.ndarray | None = None,
    skip_invalid: bool = False,
    max_problems: int = DEFAULT_MAX_PROBLEMS,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a users table: ``user_id`` present, non-empty and unique.

    Parameters
    ----------
    frame:
        Users; columns other than ``user_id`` are kept as user features.
    source, lines, skip_invalid, max_problems:
        As in :func:`validate_interactions`.

    Returns
    -------
    clean, report:
        The valid users with ``user_id`` first, and what was skipped.

    Raises
    ------
    DataValidationError
        On a missing ``user_id`` column, or an empty or repeated id (unless
        ``skip_invalid``).
    """
    max_problems = _check_max_problems(max_problems)
    locator = _locator(frame, source, lines)
    _check_required(frame, (USER_ID,), locator)
    ids, id_finding = _id_finding(frame[USER_ID], USER_ID)
    coerced = frame.copy()
    coerced[USER_ID] = ids
    findings = [id_finding, _repeated_id(coerced, USER_ID, id_finding.mask, locator)]
    keep, report = _resolve(frame, findings, locator, skip_invalid, max_problems)
    clean = _kept(coerced, keep)
    clean[USER_ID] = clean[USER_ID].astype(str)
    return clean[[USER_ID] + [c for c in clean.columns if c != USER_ID]], report
