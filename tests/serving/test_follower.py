"""The online state follows the event log.

Other processes' events, once each, on every backend: ``eventlog/test_contract.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.serving.eventlog import SQLiteEventLog
from recops.serving.follower import LogFollower
from recops.serving.state import UserStateStore


def test_batch_must_be_positive(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "events.sqlite3")
    try:
        with pytest.raises(ValueError, match="`batch` must be a positive int"):
            LogFollower(log, UserStateStore(), batch=0)
    finally:
        log.close()
