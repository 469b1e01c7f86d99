"""One transient progress bar for long work, shown only where someone can see it."""

from __future__ import annotations

from rich import get_console
from rich.progress import Progress, ProgressColumn


def transient_bar(*columns: str | ProgressColumn, enabled: bool = True) -> Progress:
    """A bar that vanishes when done; disabled when ``enabled`` is false or output is not live.

    Rich's ``Progress.stop`` prints an empty line on a console that is not interactive (a
    pipe, a log file), where the bar itself is never drawn: every bar would leave a blank
    line in the output of ``recops demo | tee log``. So a bar nobody can see is not started.
    """
    console = get_console()
    return Progress(
        *columns,
        console=console,
        transient=True,
        disable=not enabled or not console.is_interactive,
    )
