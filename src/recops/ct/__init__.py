"""Continuous training: retrain on a trigger, gate, test online, promote, watch, roll back.

>>> from recops.ct import Controller, load_ct_config
>>> controller = Controller(load_ct_config("recops-ct.toml"))   # doctest: +SKIP
>>> controller.step()                                            # doctest: +SKIP

Modules: ``config`` (:class:`CTConfig`: triggers, the experiment template, the
watch), ``state`` (the state machine, cycles and the decision log, in SQLite or,
beside a PostgreSQL event log, ``state_postgres`` in its database),
``triggers`` (bootstrap, schedule, volume, drift), ``training`` (data snapshots and
the gated pipeline), ``experiments`` (the online test and the watch, and their
verdicts), ``controller`` (:class:`Controller`: ``step(now)`` and ``run``).
"""

from recops.ct.config import CTConfig, load_ct_config
from recops.ct.controller import Controller
from recops.ct.state import (
    STATES,
    BaseStateStore,
    ControllerBusyError,
    ControllerState,
    Cycle,
    Decision,
    StateError,
    StateStore,
    open_state_store,
)

__all__ = [
    "STATES",
    "BaseStateStore",
    "CTConfig",
    "Controller",
    "ControllerBusyError",
    "ControllerState",
    "Cycle",
    "Decision",
    "StateError",
    "StateStore",
    "load_ct_config",
    "open_state_store",
]
