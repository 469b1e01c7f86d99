"""``recops serve`` (the inference server) and ``recops loadtest`` (its load generator)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recops.cli.app import app

if TYPE_CHECKING:
    from recops.sim.loadtest import Traffic


@app.command()
def serve(
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            help="Model repository: <dir>/<name>/<version>/, a folder or an fsspec URL "
            "(s3://bucket/models) (default: models).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Model to serve (default: the only one).")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Pin this version (default: serve the latest).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port (default 8000).")
    ] = None,
    event_log: Annotated[
        Path | None, typer.Option(help="SQLite event log (default: recops-events.sqlite3).")
    ] = None,
    batching: Annotated[
        bool | None,
        typer.Option(
            "--batching/--no-batching",
            help="Dynamic batching of concurrent recommend requests (default: on).",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="BLAS/torch/FAISS threads (default 1).")
    ] = None,
    benchmark_routes: Annotated[
        bool, typer.Option(help="Expose GET /v1/ceiling (framework ceiling for benchmarks).")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=(
                "Server processes sharing the port (default 1). One per core: each "
                "computes requests inline on one thread; they share the event log, "
                "admin operations and metrics."
            ),
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="Log level: debug, info, warning (default), error.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file, TOML or YAML, one key per setting (default: RECOPS_CONFIG).",
        ),
    ] = None,
) -> None:
    """Serve a model repository over HTTP (OpenAPI docs at /docs).

    Every setting (recops.serving.settings.ServerSettings) comes from, first to
    last: these options, its environment variable RECOPS_<SETTING> (RECOPS_PORT,
    RECOPS_ADMIN_TOKEN, ...), the --config file, the embedded default. An unknown
    RECOPS_* variable or file key is an error. docs/serving-production.md lists the
    limits and how to run it behind a proxy.
    """
    import shutil
    import tempfile

    from recops.serving.app import SETTINGS_ENV, create_app
    from recops.serving.config import SettingsError, load_settings
    from recops.serving.logs import configure_logging
    from recops.serving.repository import ModelRepository
    from recops.serving.server import serve as serve_app
    from recops.serving.supervisor import reuse_port_supported, run_workers

    try:
        settings = load_settings(
            config,
            model_repository=models,
            model_name=name,
            version_policy="pinned" if version else None,
            pinned_version=version,
            host=host,
            port=port,
            event_log_path=event_log,
            batching=batching,
            threads=threads,
            benchmark_routes=benchmark_routes or None,
            workers=workers,
            log_level=log_level,
        )
    except SettingsError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not ModelRepository(settings.model_repository, settings.model_cache).available():
        raise typer.BadParameter(
            f"model repository {settings.model_repository} is not a folder (or, for a URL, "
            "holds nothing)"
        )
    if settings.workers == 1:
        if not serve_app(create_app(settings), settings):
            raise typer.Exit(3)
        return
    # Workers are new processes that import the app: the validated settings reach
    # them through the environment, with a run folder of their own for this run.
    run_dir = Path(tempfile.mkdtemp(prefix="recops-serve-"))
    try:
        shared = settings.model_copy(update={"run_dir": run_dir})
        os.environ[SETTINGS_ENV] = shared.model_dump_json()
        if reuse_port_supported():
            configure_logging(settings)  # the supervisor's own lines, in the same format
            status = run_workers(shared)
            if status:
                raise typer.Exit(status)
        else:  # one shared socket (uvicorn's workers) where SO_REUSEPORT is missing
            import uvicorn

            # uvicorn's own workers: no header/body deadlines nor connection cap here.
            uvicorn.run(
                "recops.serving.app:create_app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                log_level=settings.log_level,
                timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
                backlog=settings.backlog,
            )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            mix[key.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(
                f"--mix must look like recommend=0.7,events=0.3 (got {part!r})"
            ) from None
    return mix


@app.command()
def loadtest(
    url: Annotated[str, typer.Option(help="Server base URL (loopback only).")] = (
        "http://127.0.0.1:8000"
    ),
    dataset: Annotated[
        Path | None,
        typer.Option(help="Dataset folder (interactions.parquet, items.parquet) to draw from."),
    ] = None,
    world_users: Annotated[
        int, typer.Option(min=1, help="Without --dataset: users of the generated world.")
    ] = 500,
    world_items: Annotated[
        int, typer.Option(min=1, help="Without --dataset: items of the generated world.")
    ] = 2000,
    mode: Annotated[str, typer.Option(help="'concurrency' (closed loop) or 'rate'.")] = (
        "concurrency"
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="Workers / max connections.")] = 8,
    rate: Annotated[float, typer.Option(help="Requests per second in rate mode.")] = 100.0,
    duration: Annotated[float, typer.Option(help="Measured seconds.")] = 10.0,
    warmup: Annotated[float, typer.Option(help="Seconds before measuring.")] = 1.0,
    mix: Annotated[str, typer.Option(help="Endpoint weights.")] = (
        "recommend=0.7,similar=0.1,search=0.1,events=0.1"
    ),
    k: Annotated[int, typer.Option(min=1, max=1000, help="Items per request.")] = 10,
    events_per_request: Annotated[int, typer.Option(min=1, help="Events per POST.")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Traffic seed.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the report as JSON here.")
    ] = None,
) -> None:
    """Replay simulated traffic against a running server and report latency per endpoint.

    Against a recops server the report also gives the server's own mean time per
    stage (state, user tower, ANN, re-rank, ...) over the run, from its /metrics.
    """
    from pydantic import ValidationError
    from rich.console import Console

    from recops.sim.loadtest import LoadTestConfig, report_table, run_load_test

    try:
        config = LoadTestConfig(
            url=url,
            mode=mode,  # type: ignore[arg-type]
            concurrency=concurrency,
            rate=rate,
            duration_s=duration,
            warmup_s=warmup,
            mix=_parse_mix(mix),
            k=k,
            events_per_request=events_per_request,
            seed=seed,
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    traffic = _traffic(dataset, world_users, world_items, seed)
    console = Console()
    try:
        report = run_load_test(config, traffic)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console.print(report_table(report))
    if json_out is not None:
        console.print(f"report written to {report.save_json(json_out)}")


def _traffic(dataset: Path | None, users: int, items: int, seed: int) -> Traffic:
    from recops.sim.loadtest import Traffic

    if dataset is not None:
        from recops.data.schema import Dataset

        try:
            data = Dataset.load(dataset)
        except FileNotFoundError as exc:
            raise typer.BadParameter(str(exc)) from exc
        return Traffic.from_frames(data.interactions, data.items)
    from recops.data.world import WorldConfig, generate_world

    _, data = generate_world(WorldConfig(n_users=users, n_items=items, days=2, seed=seed))
    return Traffic.from_frames(data.interactions, data.items)


@app.command()
def models(
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Model repository: <dir>/<name>/<version>/, a folder or an fsspec URL.",
        ),
    ] = "models",
) -> None:
    """List the models and versions of a repository (the latest is served by default)."""
    from rich.console import Console
    from rich.table import Table

    from recops.serving.repository import ModelRepository

    repository = ModelRepository(models)
    if not repository.available():
        raise typer.BadParameter(f"model repository {models} is not a folder")
    table = Table(title=f"model repository {repository.url}")
    for column in ("model", "versions", "latest"):
        table.add_column(column)
    listing = repository.models()
    for name, versions in listing.items():
        table.add_row(name, ", ".join(versions), versions[-1] if versions else "-")
    Console().print(table if listing else f"{repository.url} holds no models")
