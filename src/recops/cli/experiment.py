"""``recops experiment``: experiments as config files, stored next to the event log."""

from __future__ import annotations

import typer

from recops.cli.app import app

experiment_app = typer.Typer(
    help=(
        "A/B and interleaving experiments: create one from a TOML/YAML config, start, "
        "ramp and stop it; the server assigns units and logs exposures."
    ),
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")
