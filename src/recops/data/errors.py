"""Errors raised when input data does not match the recops schema.

Every problem is located the way a user looks for it: the file, the line number as
an editor shows it (1-based, the header counts as line 1) and the field. One error
carries many problems so that a user can fix a file in one pass instead of one
problem per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one row (or with the whole table).

    Parameters
    ----------
    source:
        The file name (or ``"<DataFrame>"`` for data that did not come from a file).
    line:
        1-based line number in ``source`` as an editor shows it, counting the header
        line; ``None`` when the data has no lines (a DataFrame, a Parquet file) or
        for table-level problems.
    field:
        The column the problem is in, or ``None`` when it concerns the whole line.
    reason:
        A short machine-readable key used to count problems, e.g. ``"bad_timestamp"``.
    message:
        What was expected and what came, e.g. ``"expected a number, got 'abc'"``.
    row:
        0-based position of the row in the table (as in ``frame.iloc[row]``); used in
        the message when there is no line number.
    """

    source: str
    line: int | None
    field: str | None
    reason: str
    message: str
    row: int | None = None

    def __str__(self) -> str:
        parts = [self.source]
        if self.line is not None:
            parts.append(f"line {self.line}")
        elif self.row is not None:
            parts.append(f"row {self.row}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return f"{', '.join(parts)}: {self.message}"


class DataValidationError(ValueError):
    """Input data that cannot be turned into the recops schema.

    Parameters
    ----------
    problems:
        The problems found (at least one), in the order a user should read them.
        The message lists the first ``max_shown``.
    n_total:
        How many problems there are in all, when only the first few were collected
        (defaults to ``len(problems)``).
    max_shown:
        How many problems the message spells out.
    """

    def __init__(
        self, problems: Sequence[Problem], n_total: int | None = None, max_shown: int = 20
    ) -> None:
        if not problems:
            raise ValueError("DataValidationError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.n_total = max(n_total or 0, len(self.problems))
        shown = [str(p) for p in self.problems[:max_shown]]
        more = self.n_total - len(shown)
        if more > 0:
            shown.append(f"... and {more} more problem{'s' if more > 1 else ''}")
        if self.n_total == 1:
            text = shown[0]
        else:
            text = f"{self.n_total} problems in the input data:\n" + "\n".join(
                f"  {line}" for line in shown
            )
        super().__init__(text)


class DatasetNotFoundError(FileNotFoundError):
    """A named public dataset is not on disk and downloading was not allowed."""
