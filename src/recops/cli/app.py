"""The Typer application that every ``recops`` sub-command registers on."""

import logging

import typer

app = typer.Typer(
    name="recops",
    help=(
        "recops: MLOps for real-time recommendation. Train a multi-task two-tower model, "
        "evaluate it beside baselines, serve it, and evaluate policies off-line."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

#: MLflow's logger that announces, at INFO, creating and migrating the embedded
#: registry's tables: two timestamped lines in the middle of `recops model list` or
#: the demo on a fresh project. Its own logger, not "mlflow": MLflow resets that one's
#: level when it is imported, which the commands do lazily, later.
MLFLOW_TABLE_LOGGER = "mlflow.store.db.utils"


@app.callback()
def _quiet_libraries() -> None:
    """Before any command: keep the libraries' set-up notices out of the output."""
    logging.getLogger(MLFLOW_TABLE_LOGGER).setLevel(logging.WARNING)
