"""A bar is drawn where someone can see it, and leaves nothing behind where no one can."""

from __future__ import annotations

import pytest
import rich

from recops.progress_bar import transient_bar


def test_a_bar_on_a_pipe_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # Rich's own bar prints an empty line when it stops on a pipe: one per model in a log.
    assert not rich.get_console().is_interactive
    with transient_bar() as bar:
        bar.advance(bar.add_task("work", total=2))
    print("done")
    assert capsys.readouterr().out == "done\n"
    assert bar.disable


def test_a_bar_is_shown_on_a_terminal_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rich.get_console(), "is_interactive", True)
    assert not transient_bar().disable
    assert transient_bar(enabled=False).disable
