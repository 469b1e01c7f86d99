"""``recops pipeline``: run the training pipeline, list and show runs, compile for Kubeflow.

``PIPELINE`` is ``train`` (recops' training pipeline) or any ``module:name`` of a
``@pipeline`` function; for ``train`` the ``--config`` file is a training config
(:mod:`recops.pipelines.training.config`), for others a table of the pipeline's
parameters. Bad input (a config, an unknown run) is a one-line message and exit
code 2; a run whose step fails prints the step's error, says how to resume, and
exits with code 1.
"""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

if TYPE_CHECKING:
    from recops.pipelines import Executor, Pipeline, RunRecord, RunStore

pipeline_app = typer.Typer(
    help=(
        "Pipelines as Python functions: run recops' training pipeline locally or on Ray "
        "with caching and lineage, list and show runs, compile it for Kubeflow Pipelines."
    ),
    no_args_is_help=True,
)
app.add_typer(pipeline_app, name="pipeline")

BAD_INPUT = 2
RUN_FAILED = 1
#: ``train`` is the gated training pipeline: trained, evaluated, registered, gated, deployed.
PIPELINES = {"train": "recops.registry.pipeline:gated_training_pipeline"}


class ExecutorName(StrEnum):
    """Where steps run."""

    local = "local"
    ray = "ray"


class Target(StrEnum):
    """What ``compile`` writes."""

    kfp = "kfp"


PipelineArgument = Annotated[
    str, typer.Argument(help="`train`, or module:name of a @pipeline function.")
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML/YAML/JSON config (for `train`: source, model, ...)."),
]
RunsOption = Annotated[
    Path | None,
    typer.Option(
        "--runs",
        envvar="RECOPS_PIPELINE_RUNS",
        help="Run store (SQLite); default: the config's [storage] runs, else "
        "$RECOPS_HOME/pipelines/runs.sqlite3.",
    ),
]
ArtifactsOption = Annotated[
    str | None,
    typer.Option(
        "--artifacts",
        envvar="RECOPS_PIPELINE_ARTIFACTS",
        help="Artifact store: a folder or fsspec URL (s3://...); default: the config's.",
    ),
]
ExecutorOption = Annotated[
    ExecutorName, typer.Option("--executor", help="local: this process; ray: Ray tasks.")
]
RayAddressOption = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster to join (default: local).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RunArgument = Annotated[str, typer.Argument(help="A run id (or a unique prefix of one).")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input becomes one line on stderr and exit code 2; a failed run, exit code 1."""
    import sqlite3

    from pydantic import ValidationError

    from recops.config_files import describe_errors
    from recops.pipelines import PipelineError
    from recops.pipelines.runstore import RunNotFoundError
    from recops.pipelines.store import ArtifactNotFoundError
    from recops.pipelines.training.config import ConfigError

    console = Console(stderr=True)
    try:
        yield
    except PipelineError as err:
        console.print(f"error: {err}", style="red", markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"resume it from the failed step: recops pipeline resume {err.run_id}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(RUN_FAILED) from None
    except ValidationError as err:
        console.print(describe_errors(err, "config"), style="red", markup=False, highlight=False)
        raise typer.Exit(BAD_INPUT) from None
    except (
        ConfigError,
        RunNotFoundError,
        ArtifactNotFoundError,
        FileNotFoundError,
        ValueError,
        TypeError,
        RuntimeError,
        sqlite3.Error,
    ) as err:
        console.print(f"error: {err}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(BAD_INPUT) from None


def _pipeline(name: str) -> Pipeline:
    from recops.pipelines import Pipeline
    from recops.pipelines.graph import load_object

    ref = PIPELINES.get(name, name)
    if ":" not in ref:
        raise ValueError(f"unknown pipeline {name!r}: use {', '.join(PIPELINES)} or module:name")
    found = load_object(ref)
    if not isinstance(found, Pipeline):
        raise ValueError(f"{ref} is not a @pipeline function")
    return found


def _parameters(name: str, config: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline's parameters and the storage settings the config names."""
    from recops.pipelines.training.config import load_config, read_file

    if name in PIPELINES:
        schema = typing.get_type_hints(_pipeline(name).fn)["config"]
        training = load_config(config, schema)
        storage = training.storage.model_dump()
        return {"config": training}, {**storage, "image": training.kfp.image}
    if config is None:
        return {}, {}
    data = read_file(config)
    if not isinstance(data, dict):
        raise ValueError(f"{config}: expected a table of the pipeline's parameters")
    return data, {}


def _stores(
    runs: Path | None, artifacts: str | None, storage: dict[str, Any]
) -> tuple[RunStore, str | None]:
    from recops.pipelines import RunStore
    from recops.pipelines.settings import default_run_store

    path = runs or (Path(storage["runs"]) if storage.get("runs") else default_run_store())
    return RunStore(path), artifacts or storage.get("artifacts")


def _executor(
    kind: ExecutorName, runs: RunStore, artifacts: str | None, cache: bool, address: str | None
) -> Executor:
    from recops.pipelines import LocalExecutor
    from recops.pipelines.progress import Reporter

    reporter = Reporter(Console(stderr=True))
    if kind is ExecutorName.ray:
        from recops.pipelines.ray_executor import RayExecutor

        return RayExecutor(artifacts, runs, cache=cache, reporter=reporter, address=address)
    return LocalExecutor(artifacts, runs, cache=cache, reporter=reporter)


def _counts(record: RunRecord) -> str:
    statuses = [s.status for s in record.steps]
    parts = [f"{statuses.count(k)} {k}" for k in ("succeeded", "cached", "failed", "skipped")]
    return ", ".join(p for p in parts if not p.startswith("0 "))


def _when(stamp: float | None) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _summary(record: RunRecord) -> Table:
    table = Table(title=f"run {record.run_id} · {record.pipeline} · {record.status}")
    for column in ("step", "status", "seconds", "attempts", "outputs"):
        table.add_column(column, justify="right" if column in ("seconds", "attempts") else "left")
    for step in record.steps:
        outputs = ", ".join(
            f"{n}={'none' if d is None else d[:12]}" for n, d in step.outputs.items()
        )
        table.add_row(step.name, step.status, _seconds(step.seconds), str(step.attempts), outputs)
    return table


@pipeline_app.command("run")
def run(
    name: PipelineArgument = "train",
    config: ConfigOption = None,
    executor: ExecutorOption = ExecutorName.local,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="Skip steps whose results are cached.")
    ] = True,
    runs: RunsOption = None,
    artifacts: ArtifactsOption = None,
    ray_address: RayAddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline: cached steps are skipped, every step's lineage is recorded."""
    with _user_errors():
        pipeline = _pipeline(name)
        params, storage = _parameters(name, config)
        store, artifact_url = _stores(runs, artifacts, storage)
        runner = _executor(executor, store, artifact_url, cache, ray_address)
        result = runner.run(pipeline, **params)
    _print_run(result.record, as_json)


@pipeline_app.command("resume")
def resume(
    run_id: RunArgument,
    executor: ExecutorOption = ExecutorName.local,
    runs: RunsOption = None,
    ray_address: RayAddressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed run again from its failed step (earlier steps' outputs are kept)."""
    with _user_errors():
        store, _ = _stores(runs, None, {})
        record = store.get_run(run_id)
        runner = _executor(executor, store, record.store, True, ray_address)
        result = runner.resume(record.run_id)
    _print_run(result.record, as_json)


def _print_run(record: RunRecord, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(record.to_dict(), indent=2))
        return
    console = Console()
    console.print(_summary(record))
    console.print(
        f"{_counts(record)} in {_seconds(record.seconds)} s · recops pipeline show {record.run_id}",
        highlight=False,
    )


@pipeline_app.command("runs")
def list_runs(
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only runs of this pipeline.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
    runs: RunsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the latest runs: status, executor, duration, steps run and cached."""
    with _user_errors():
        store, _ = _stores(runs, None, {})
        records = store.list_runs(pipeline, limit)
    if as_json:
        typer.echo(json.dumps([_run_row(r) for r in records], indent=2))
        return
    table = Table(title=f"pipeline runs · {store.path}")
    for column in ("run", "pipeline", "status", "executor", "started (UTC)", "seconds", "steps"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in records:
        table.add_row(
            r.run_id, r.pipeline, r.status, r.executor, _when(r.started), _seconds(r.seconds),
            _counts(r),
        )  # fmt: skip
    Console().print(table)


def _run_row(record: RunRecord) -> dict[str, Any]:
    row = record.to_dict()
    row["steps"] = {s.name: s.status for s in record.steps}
    return row


@pipeline_app.command("show")
def show(
    run_id: RunArgument,
    runs: RunsOption = None,
    logs: Annotated[bool, typer.Option("--logs", help="Also print every step's log.")] = False,
    as_json: JsonOption = False,
) -> None:
    """One run: steps, durations, cache hits, artifacts and where each came from."""
    with _user_errors():
        store, _ = _stores(runs, None, {})
        record = store.get_run(run_id)
        digests = sorted({d for s in record.steps for d in s.outputs.values() if d is not None})
        lineage = {d: store.lineage(d) for d in digests}
    if as_json:
        document = record.to_dict()
        document["artifacts"] = {
            d: {
                "record": None if ln.artifact is None else ln.artifact.to_dict(),
                "produced_by": None
                if ln.producer is None
                else {
                    "run_id": ln.producer.run_id,
                    "step": ln.producer.name,
                    "component": ln.producer.component,
                    "code_hash": ln.producer.code_hash,
                    "params": ln.producer.params,
                    "inputs": ln.producer.inputs,
                },
                "read_by": [list(c) for c in ln.consumers],
            }
            for d, ln in lineage.items()
        }
        typer.echo(json.dumps(document, indent=2))
        return
    console = Console()
    console.print(_summary(record))
    started = _when(record.started)
    code = record.code_version
    git = code.get("git")
    revision = "no git checkout" if not git else f"git {git[:12]}" + (
        " with local changes" if code.get("dirty") else ""
    )  # fmt: skip
    console.print(
        f"{record.executor} executor, started {started} UTC, {_seconds(record.seconds)} s, "
        f"attempts {record.attempts}; recops {code.get('recops')}, Python {code.get('python')}, "
        f"{revision}",
        highlight=False,
        soft_wrap=True,
    )
    if record.error:
        console.print(f"error: {record.error}", style="red", markup=False, highlight=False)
    table = Table(title="artifacts and lineage")
    for column in ("digest", "kind", "type", "size", "produced by", "from inputs", "read by"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for digest, ln in lineage.items():
        art = ln.artifact
        producer = ln.producer
        made = "" if producer is None else f"{producer.run_id} {producer.name}"
        inputs = "" if producer is None else ", ".join(
            f"{n}={'none' if d is None else d[:12]}" for n, d in producer.inputs.items()
        )  # fmt: skip
        table.add_row(
            digest[:12],
            "" if art is None else art.kind,
            "" if art is None else art.type.rpartition(":")[2],
            "" if art is None else f"{art.size:,}",
            made,
            inputs,
            str(len(ln.consumers)),
        )
    console.print(table)
    for step in record.steps:
        if step.cached_from:
            console.print(f"{step.name}: cached from run {step.cached_from}", highlight=False)
        if step.error:
            console.print(f"{step.name}: {step.error}", style="red", markup=False)
        if logs and step.log:
            console.rule(f"log of {step.name}")
            console.print(step.log, markup=False, highlight=False)


@pipeline_app.command("compile")
def compile_pipeline(
    name: PipelineArgument,
    out: Annotated[Path, typer.Option("--out", help="The pipeline spec YAML to write.")],
    target: Annotated[Target, typer.Option("--target", help="kfp: Kubeflow Pipelines v2.")] = (
        Target.kfp
    ),
    config: ConfigOption = None,
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            envvar="RECOPS_IMAGE",
            help="Container image every step runs in (default: the config's kfp.image).",
        ),
    ] = None,
) -> None:
    """Compile a pipeline (traced with the config) to a Kubeflow Pipelines v2 spec."""
    from recops.pipelines.kubeflow import compile_kfp
    from recops.pipelines.training.config import DEFAULT_IMAGE

    with _user_errors():
        pipeline = _pipeline(name)
        params, storage = _parameters(name, config)
        graph = pipeline.trace(params)
        written = compile_kfp(graph, out, image or storage.get("image") or DEFAULT_IMAGE)
    Console(stderr=True).print(
        f"wrote {written}: {len(graph.steps)} steps ({', '.join(graph.names())}) for {target}",
        highlight=False,
    )


@pipeline_app.command(
    "step",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def step(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The component, module:name.")],
    params: Annotated[
        str, typer.Option("--params", help="The step's parameters as a JSON object.")
    ] = "{}",
    timeout_s: Annotated[
        float | None, typer.Option("--timeout-s", help="Fail the step after this many seconds.")
    ] = None,
) -> None:
    """Run one component on artifact folders: what each step of a compiled pipeline runs.

    Give each input as --input NAME PATH (an artifact folder another step wrote) and
    each output as --output NAME PATH (the folder to write); prints the output
    digests as JSON.
    """
    from recops.pipelines.kubeflow import run_container_step

    with _user_errors():
        inputs, outputs = _io_pairs(list(ctx.args))
        try:
            values = json.loads(params)
        except json.JSONDecodeError as err:
            raise ValueError(f"--params: not valid JSON ({err.msg})") from None
        if not isinstance(values, dict):
            raise ValueError("--params must be a JSON object of parameter values")
        digests = run_container_step(ref, values, inputs, outputs, timeout_s)
    typer.echo(json.dumps(digests, indent=2))


def _io_pairs(args: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    found: dict[str, dict[str, str]] = {"--input": {}, "--output": {}}
    while args:
        flag = args.pop(0)
        if flag not in found or len(args) < 2:
            raise ValueError(f"expected --input NAME PATH or --output NAME PATH (got {flag!r})")
        name, path = args.pop(0), args.pop(0)
        found[flag][name] = path
    return found["--input"], found["--output"]
