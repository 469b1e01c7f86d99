"""What a person sees while a pipeline runs: a progress bar and one line per finished step."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

_MARKS = {
    "succeeded": "[green]✓[/green]",
    "cached": "[cyan]↺[/cyan]",
    "reused": "[cyan]↺[/cyan]",
    "failed": "[red]✗[/red]",
}


class Reporter:
    """Shows a run on a terminal; :class:`Silent` is the quiet default for libraries."""

    def __init__(self, console: Console | None = None) -> None:
        # A fixed stream: a step's captured stdout must not swallow the bar's refreshes.
        self.console = console or Console(file=sys.stderr)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._running: list[str] = []
        self._pipeline = ""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start(self, pipeline: str, run_id: str, n_steps: int, resumed: bool) -> None:
        """A run begins with ``n_steps`` steps."""
        verb = "resuming" if resumed else "running"
        self.console.print(f"{verb} pipeline [bold]{pipeline}[/bold], run {run_id}")
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._pipeline = pipeline
        self._task = self._progress.add_task(pipeline, total=n_steps)
        self._progress.start()

    def _describe(self) -> None:
        if self._progress is not None and self._task is not None:
            running = ", ".join(self._running) or self._pipeline
            self._progress.update(self._task, description=running)

    def step_started(self, name: str) -> None:
        """A step starts executing."""
        self._running.append(name)
        self._describe()

    def step_done(self, name: str, status: str, seconds: float | None, detail: str = "") -> None:
        """A step ended with ``status`` (succeeded, cached, reused, failed)."""
        if name in self._running:
            self._running.remove(name)
        took = "" if seconds is None else f"{seconds:7.2f} s"
        line = f"{_MARKS.get(status, '?')} {name:<16} {status:<9} {took}"
        if detail:
            line += f"  [dim]{detail}[/dim]"
        if self._progress is not None and self._task is not None:
            self._progress.console.print(line, highlight=False)
            self._progress.advance(self._task)
            self._describe()
        else:
            self.console.print(line, highlight=False)


class Silent(Reporter):
    """Reports nothing."""

    def __init__(self) -> None:
        super().__init__(Console(quiet=True))

    def start(self, pipeline: str, run_id: str, n_steps: int, resumed: bool) -> None:
        return None

    def step_started(self, name: str) -> None:
        return None

    def step_done(self, name: str, status: str, seconds: float | None, detail: str = "") -> None:
        return None
