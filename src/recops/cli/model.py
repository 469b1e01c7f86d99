"""``recops model``: the MLflow model registry — versions, aliases, promotion, rollback.

``list`` shows the registered versions with their aliases (``champion``,
``challenger``) and gate verdicts, ``show`` one version with every gate reason,
``promote`` points an alias at a version (only one whose gate passed, unless
``--force``), ``rollback`` returns an alias to the version it held before, and
``history`` lists every move with who made it and why. A server started with
``RECOPS_FOLLOW_ALIAS=champion`` serves the new champion within seconds of a
promotion or a rollback. (``recops models`` lists the folders of a model
repository instead.) Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

if TYPE_CHECKING:
    from recops.registry import AliasMove, RegisteredVersion, Registry

model_app = typer.Typer(
    help=(
        "The MLflow model registry: registered versions, the champion and challenger "
        "aliases, promotion and one-command rollback, each recorded with who and why "
        "(`recops models` lists a model repository's folders)."
    ),
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")

BAD_INPUT = 2

RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking/registry URI (default: SQLite under $RECOPS_HOME/mlflow).",
    ),
]
NameArgument = Annotated[str, typer.Argument(help="The registered model (e.g. two_tower).")]
AliasOption = Annotated[
    str, typer.Option("--alias", help="The alias to move (champion, challenger, ...).")
]
ReasonOption = Annotated[
    str, typer.Option("--reason", "-m", help="Why: recorded in the audit and on the version.")
]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who, for the audit (default: the OS user).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Refusals and bad names become one line on stderr and exit code 2."""
    from recops.registry import RegistryError

    try:
        yield
    except (RegistryError, ValueError, LookupError) as err:
        message = str(err.args[0]) if err.args else str(err)
        Console(stderr=True).print(
            f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(BAD_INPUT) from None
    except Exception as err:  # an unreachable or broken store: say which, without a traceback
        if type(err).__name__ != "MlflowException":
            raise
        Console(stderr=True).print(
            f"error: the MLflow store refused: {err}", style="red", markup=False, highlight=False
        )
        raise typer.Exit(BAD_INPUT) from None


def _registry(uri: str | None) -> Registry:
    from recops.registry import Registry

    return Registry(uri)


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


def _version_row(v: RegisteredVersion) -> dict[str, Any]:
    return {
        "model": v.name,
        "version": v.version,
        "aliases": list(v.aliases),
        "gate": v.gate,
        "repository_version": v.repository_version,
        "model_digest": v.model_digest,
        "data_version": v.data_version,
        "run_id": v.run_id,
        "created_at": v.created_at,
    }


def _move_row(move: AliasMove) -> dict[str, Any]:
    return {
        "model": move.model,
        "alias": move.alias,
        "version": move.version,
        "previous": move.previous,
        "action": move.action,
        "actor": move.actor,
        "reason": move.reason,
        "at": move.at,
    }


@model_app.command("list")
def list_versions(
    name: Annotated[
        str | None, typer.Argument(help="A registered model (default: every one).")
    ] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Registered versions: aliases, gate verdict, repository folder, data version, run."""
    with _user_errors():
        client = _registry(registry)
        names = [name] if name is not None else client.models()
        versions = [v for n in names for v in client.versions(n)]
    if as_json:
        typer.echo(json.dumps([_version_row(v) for v in versions], indent=2))
        return
    table = Table(title=f"model registry · {client.location}")
    for column in ("model", "version", "aliases", "gate", "folder", "data", "run", "registered"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            v.name, v.version, ", ".join(v.aliases), v.gate or "-", v.repository_version or "-",
            (v.data_version or "-")[:12], (v.run_id or "-")[:12], _when(v.created_at),
        )  # fmt: skip
    Console().print(table if versions else "no registered versions")


@model_app.command("show")
def show(
    name: NameArgument,
    version: Annotated[str, typer.Argument(help="The registered version.")],
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version: its tags, aliases, and the gate's verdict with every rule's reason."""
    with _user_errors():
        client = _registry(registry)
        found = client.version(name, version)
        result = client.gate_result(name, version)
    if as_json:
        document = {**_version_row(found), "tags": found.tags}
        document["gate_result"] = None if result is None else result.model_dump(mode="json")
        typer.echo(json.dumps(document, indent=2))
        return
    console = Console()
    console.print(
        f"{found.name} version {found.version} · aliases {', '.join(found.aliases) or 'none'} · "
        f"folder {found.repository_version or '-'} · run {found.run_id or '-'}",
        highlight=False,
    )
    if result is None:
        console.print("no gate verdict", highlight=False)
    else:
        table = Table(title=f"gate {result.summary()}")
        for column in ("rule", "status", "value", "threshold", "why"):
            table.add_column(column)
        for o in result.outcomes:
            value = "-" if o.value is None else f"{o.value:.4g}"
            threshold = "-" if o.threshold is None else f"{o.threshold:.4g}"
            table.add_row(o.rule, o.status, value, threshold, o.message)
        console.print(table)
    moves = [
        f"{k}={v}"
        for k, v in sorted(found.tags.items())
        if k.startswith(("recops.champion.", "recops.challenger."))
    ]
    for line in moves:
        console.print(line, markup=False, highlight=False)


def _print_move(move: AliasMove, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_move_row(move), indent=2))
        return
    Console().print(
        f"{move.model}: {move.alias} → version {move.version} (was {move.previous or 'unset'}), "
        f"{move.action} by {move.actor}: {move.reason}",
        markup=False,
        highlight=False,
    )


@model_app.command("promote")
def promote(
    name: NameArgument,
    version: Annotated[str, typer.Argument(help="The registered version to point the alias at.")],
    reason: ReasonOption,
    alias: AliasOption = "champion",
    actor: ActorOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote a version whose gate failed or never ran.")
    ] = False,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point an alias (champion by default) at a version whose gate passed."""
    with _user_errors():
        move = _registry(registry).promote(
            name, version, alias=alias, actor=actor, reason=reason, force=force
        )
    _print_move(move, as_json)


@model_app.command("rollback")
def rollback(
    name: NameArgument,
    reason: ReasonOption,
    alias: AliasOption = "champion",
    actor: ActorOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Return an alias to the version it held before the current one (one step back)."""
    with _user_errors():
        move = _registry(registry).rollback(name, alias=alias, actor=actor, reason=reason)
    _print_move(move, as_json)


@model_app.command("history")
def history(
    name: NameArgument,
    alias: Annotated[str | None, typer.Option("--alias", help="Only this alias.")] = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every alias move: when, which alias, from which version to which, who and why."""
    with _user_errors():
        moves = _registry(registry).audit(name, alias)
    if as_json:
        typer.echo(json.dumps([_move_row(m) for m in moves], indent=2))
        return
    table = Table(title=f"alias moves of {name}")
    for column in ("at (UTC)", "alias", "from", "to", "action", "by", "why"):
        table.add_column(column)
    for m in moves:
        table.add_row(
            _when(m.at), m.alias, m.previous or "-", m.version, m.action, m.actor, m.reason
        )
    Console().print(table if moves else f"no alias moves of {name}")
