"""``recops experiment``: experiments as config files, stored next to the event log.

``create FILE`` validates a TOML/YAML config (model versions against ``--models``)
and reserves the experiment's share of its layer; ``start``, ``ramp`` and ``stop``
change it, each recorded with who and when; ``list`` and ``show`` read it back. A
running ``recops serve`` on the same event log picks every change up by itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

if TYPE_CHECKING:
    from recops.experiments.config import ModelRef, ModelResolver
    from recops.experiments.store import Change, ExperimentRecord, ExperimentStore

experiment_app = typer.Typer(
    help=(
        "A/B and interleaving experiments: create one from a TOML/YAML config, start, "
        "ramp and stop it; the server assigns units and logs exposures."
    ),
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")

# Exit code for bad input (the same code Click uses for usage errors).
BAD_INPUT = 2

EventLogOption = Annotated[
    str,
    typer.Option(
        "--event-log",
        envvar=["RECOPS_EVENT_LOG_URL", "RECOPS_EVENT_LOG_PATH"],
        help="The event log the experiments are stored in (the one `recops serve` uses): "
        "a SQLite file or a postgresql:// URL.",
    ),
]
ModelsOption = Annotated[
    Path,
    typer.Option(
        "--models",
        envvar="RECOPS_MODEL_REPOSITORY",
        help="Model repository (<dir>/<name>/<version>/) the variants' versions must exist in.",
    ),
]
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="MLflow tracking/registry URI: variants may then name a registry alias "
        '(`alias = "champion"`), resolved and materialised into --models.',
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="Who makes the change, for the audit log (default: OS user)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NameArgument = Annotated[str, typer.Argument(help="The experiment's name.")]

DEFAULT_EVENT_LOG = "recops-events.sqlite3"
DEFAULT_MODELS = Path("models")


def resolver(models: Path, registry: str | None) -> ModelResolver:
    """The repository's resolver, with registry aliases on top when ``registry`` is given."""
    if registry is None:
        return repository_resolver(models)
    from recops.registry import Registry
    from recops.registry.resolver import registry_resolver

    return registry_resolver(Registry(registry), models, repository_resolver(models))


def repository_resolver(root: str | Path) -> ModelResolver:
    """Resolve variants against a model repository: versions on disk, alias ``latest``.

    ``latest`` is the highest version (numeric versions compare as numbers); a
    variant without ``model`` uses the repository's only model.
    """
    from recops.experiments.config import ModelRef
    from recops.serving.repository import ModelNotFoundError, ModelRepository

    repository = ModelRepository(root)

    def resolve(model: str | None, version: str | None, alias: str | None) -> ModelRef:
        if not repository.available():
            raise LookupError(f"model repository {root} is not a folder (see --models)")
        name = repository.default_name(model)
        if alias is not None:
            if alias != "latest":
                raise LookupError(
                    f"unknown alias {alias!r}: the model repository knows 'latest' (its "
                    "highest version); give a `version` instead"
                )
            return ModelRef(name, repository.latest(name))
        if version is None:
            raise ValueError("give the variant a `version` or an `alias`")
        if not repository.exists(name, version):
            versions = repository.models().get(name, [])
            raise ModelNotFoundError(
                f"no version {version!r} of model {name!r} in {root} "
                f"(versions: {', '.join(versions) or 'none'})"
            )
        return ModelRef(name, version)

    return resolve


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn refusals into a message on stderr and exit code 2 instead of a traceback."""
    import sqlite3

    from recops.experiments.config import ExperimentConfigError
    from recops.experiments.store import ExperimentStoreError

    try:
        yield
    except (ExperimentConfigError, ExperimentStoreError, sqlite3.Error, OSError) as err:
        # markup=False: messages quote the user's names, which may contain "[...]".
        Console(stderr=True).print(
            f"error: {err}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        raise typer.Exit(BAD_INPUT) from None


@contextmanager
def _store(target: str, *, must_exist: bool = False) -> Iterator[ExperimentStore]:
    from recops.experiments.store import ExperimentNotFoundError
    from recops.experiments.store_postgres import open_experiment_store

    if must_exist and not _exists(target):
        raise ExperimentNotFoundError(
            f"{target} does not exist: no experiment has been created there (see --event-log)"
        )
    store = open_experiment_store(target)
    try:
        yield store
    finally:
        store.close()


def describe_log(target: str | Path) -> str:
    """An event log for messages: the file, or the database URL without its password."""
    from recops.experiments.store_postgres import is_postgres_url

    if is_postgres_url(target):
        from recops.postgres import redact

        return redact(str(target))
    return str(target)


def _exists(target: str) -> bool:
    """A database URL always names a store (its tables are made on first use); a file may not."""
    from recops.experiments.store_postgres import is_postgres_url

    return is_postgres_url(target) or Path(target).exists()


def _print_record(record: ExperimentRecord, as_json: bool, verb: str) -> None:
    if as_json:
        typer.echo(json.dumps(record.to_dict(), indent=2))
        return
    Console().print(f"[green]{verb}:[/] {record.name}", highlight=False)
    Console().print(_summary(record))


@experiment_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="The experiment config (.toml, .yaml or .yml).")],
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    models: ModelsOption = DEFAULT_MODELS,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a draft of the same name (not started).")
    ] = False,
    registry: RegistryOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate a config and store it as a draft, reserving its share of the layer.

    Refused, with what to fix: invalid fields (file, line, field), versions or
    aliases not in the model repository, and a layer without room for it.
    """
    from recops.experiments.config import load_experiment

    with _user_errors():
        resolve = resolver(models, registry)
        config = load_experiment(file, resolve)
        with _store(event_log) as store:
            record = store.create(config, resolve, actor=actor, source=str(file), replace=replace)
    _print_record(record, as_json, "created (draft; `recops experiment start` runs it)")


@experiment_app.command("list")
def list_experiments(
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    as_json: JsonOption = False,
) -> None:
    """Every experiment with its phase, traffic and layer segment."""
    with _user_errors():
        records = []
        if _exists(event_log):
            with _store(event_log) as store:
                records = store.experiments()
    if as_json:
        typer.echo(json.dumps({"experiments": [r.to_dict() for r in records]}, indent=2))
        return
    if not records:
        Console().print(f"no experiments in {describe_log(event_log)}", highlight=False)
        return
    table = Table(title=f"experiments in {describe_log(event_log)}", title_justify="left")
    for column in ("name", "layer", "type", "phase", "traffic", "buckets", "variants", "started"):
        table.add_column(column, justify="right" if column == "traffic" else "left")
    for r in records:
        table.add_row(
            r.name,
            r.config.layer,
            r.config.type,
            r.phase(),
            f"{r.config.traffic:g}",
            f"{r.segment.start}-{r.segment.end - 1}",
            ", ".join(v.name for v in r.config.variants),
            _when(r.started_at),
        )
    Console().print(table)


@experiment_app.command("show")
def show(
    name: NameArgument,
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    as_json: JsonOption = False,
) -> None:
    """An experiment's config, variants, what is logged of it, and its change history."""
    with _user_errors(), _store(event_log, must_exist=True) as store:
        record = store.get(name)
        logged = store.logged(name)
        changes = store.changes(name)
    if as_json:
        out = {**record.to_dict(), "logged": logged, "changes": [c.to_dict() for c in changes]}
        typer.echo(json.dumps(out, indent=2))
        return
    console = Console()
    console.print(_summary(record, logged))
    console.print(_variants(record))
    console.print(_changes(changes))


@experiment_app.command("start")
def start(
    name: NameArgument,
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    models: ModelsOption = DEFAULT_MODELS,
    registry: RegistryOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a draft: versions (and aliases, resolved now) are pinned for its whole run."""
    with _user_errors(), _store(event_log, must_exist=True) as store:
        record = store.start(name, resolver(models, registry), actor=actor)
    _print_record(record, as_json, "started")


@experiment_app.command("stop")
def stop(
    name: NameArgument,
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop an experiment for good (a draft is cancelled); what it logged is kept."""
    with _user_errors(), _store(event_log, must_exist=True) as store:
        record = store.stop(name, actor=actor)
    _print_record(record, as_json, "stopped")


@experiment_app.command("ramp")
def ramp(
    name: NameArgument,
    traffic: Annotated[
        float, typer.Option("--traffic", help="New share of the layer's units, in (0, 1].")
    ],
    event_log: EventLogOption = DEFAULT_EVENT_LOG,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an experiment's traffic.

    Up only adds units (nobody changes variant). Down is refused once exposures
    are logged: stop the experiment instead.
    """
    with _user_errors(), _store(event_log, must_exist=True) as store:
        record = store.ramp(name, traffic, actor=actor)
    _print_record(record, as_json, f"ramped to {record.config.traffic:g}")


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _summary(record: ExperimentRecord, logged: dict[str, int] | None = None) -> Table:
    config = record.config
    table = Table(title=f"experiment {record.name}", title_justify="left", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    window = " → ".join(
        t.isoformat() if t is not None else "open" for t in (config.start, config.stop)
    )
    rows = [
        ("phase", record.phase()),
        ("type", config.type),
        ("layer", f"{config.layer} (buckets {record.segment.start}-{record.segment.end - 1})"),
        ("unit", config.unit),
        ("salt", config.salt),
        ("traffic", f"{config.traffic:g} of the layer, holdout {config.holdout:g}"),
        ("window", window),
        ("primary metric", config.primary_metric),
        ("guardrails", ", ".join(_guardrail(g) for g in config.guardrails) or "-"),
        ("created", _when(record.created_at)),
        ("started", _when(record.started_at)),
        ("stopped", _when(record.stopped_at)),
        ("source", record.source or "-"),
    ]
    if logged is not None:
        rows.append(("logged", ", ".join(f"{n:,} {table}" for table, n in logged.items())))
    for label, value in rows:
        table.add_row(label, value)
    return table


def _guardrail(spec: Any) -> str:
    return f"{spec.metric} (harm: {spec.direction} > {spec.max_relative_change:g})"


def _variants(record: ExperimentRecord) -> Table:
    config = record.config
    total = sum(v.weight for v in config.variants)
    table = Table(title="variants", title_justify="left")
    for column in ("variant", "share", "model", "version", "asked", "policy"):
        table.add_column(column, justify="right" if column == "share" else "left")
    for v in config.variants:
        ref: ModelRef | None = record.models.get(v.name)
        policy = v.policy.model_dump()
        kind = policy.pop("kind")
        params = ", ".join(f"{k}={value}" for k, value in policy.items())
        table.add_row(
            v.name + (" (control)" if v.name == config.control else ""),
            "-" if config.type == "interleaving" else f"{v.weight / total:.1%}",
            ref.model if ref else "-",
            ref.version if ref else "-",
            f"alias {v.alias}" if v.alias else f"version {v.version}",
            f"{kind}({params})" if params else kind,
        )
    return table


def _changes(changes: list[Change]) -> Table:
    table = Table(title="changes", title_justify="left")
    for column in ("when", "who", "action", "detail"):
        table.add_column(column)
    for c in changes:
        detail = {k: v for k, v in c.detail.items() if k != "config"}
        table.add_row(_when(c.timestamp), c.actor, c.action, json.dumps(detail, sort_keys=True))
    return table
