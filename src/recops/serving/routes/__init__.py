"""The HTTP routes, one module per group; :func:`install_routes` registers them all."""

from __future__ import annotations

from fastapi import FastAPI

from recops.serving.routes import (
    ceiling,
    events,
    experiments,
    items,
    models,
    operations,
    recommend,
)
from recops.serving.settings import ServerSettings


def install_routes(app: FastAPI, settings: ServerSettings) -> None:
    """Every route of the server (the benchmark ceilings only when the settings ask)."""
    recommend.install(app)
    events.install(app)
    experiments.install(app)
    models.install(app)
    items.install(app)
    operations.install(app)
    if settings.benchmark_routes:
        ceiling.install(app)
