"""Optional dependencies, imported when a feature needs them; the error says how to get them."""

from __future__ import annotations

import importlib
from typing import Any


def import_ray(*submodules: str, needed_by: str, install: str = "ray") -> Any:
    """The ``ray`` module with ``submodules`` (``"data"``, ``"train.torch"``) imported.

    Raises
    ------
    RuntimeError
        Naming ``needed_by`` and the ``pip install`` that provides it, when Ray (or one
        of its parts) is not installed.
    """
    try:
        ray = importlib.import_module("ray")
        for name in submodules:
            importlib.import_module(f"ray.{name}")
    except ImportError:
        raise RuntimeError(
            f"{needed_by} needs Ray: pip install '{install}' (recops uses ray>=2.9)"
        ) from None
    return ray
