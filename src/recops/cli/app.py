"""The Typer application that every ``recops`` sub-command registers on."""

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
