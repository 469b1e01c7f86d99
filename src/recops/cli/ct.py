"""``recops ct``: the continuous-training controller — run it, step it, see where it is and why.

``run`` steps every ``poll_interval_s`` until SIGINT or SIGTERM (the step in
progress finishes first); ``step`` makes one round; ``train`` starts a cycle by
hand; ``status`` shows the state machine, the cycle in flight and the last
round's findings; ``log`` lists every decision with its reason; ``demo`` shows the
whole loop on a drifting simulated world (:mod:`recops.cli.demo_ct`). The config
is a TOML/YAML file (:mod:`recops.ct.config`). Bad input (a config, a busy state
store, a registry that refuses) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from recops.cli.app import app

if TYPE_CHECKING:
    from recops.ct import Controller, CTConfig, Decision

ct_app = typer.Typer(
    help=(
        "Continuous training: retrain on a schedule, new data or drift, gate, test the "
        "challenger online against the champion, promote, watch, roll back — every "
        "decision logged with its reason."
    ),
    no_args_is_help=True,
)
app.add_typer(ct_app, name="ct")

BAD_INPUT = 2

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", envvar="RECOPS_CT_CONFIG", help="The controller's TOML/YAML config."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
NowOption = Annotated[
    float | None,
    typer.Option(help="The controller's clock, unix seconds (default: now; for replays)."),
]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Bad input becomes one line on stderr and exit code 2, never a traceback."""
    import sqlite3

    from pydantic import ValidationError

    from recops.config_files import describe_errors
    from recops.ct import ControllerBusyError, StateError
    from recops.pipelines.training.config import ConfigError
    from recops.registry import RegistryError

    console = Console(stderr=True)

    def fail(message: str) -> typer.Exit:
        console.print(f"error: {message}", style="red", markup=False, highlight=False,
                      soft_wrap=True)  # fmt: skip
        return typer.Exit(BAD_INPUT)

    try:
        yield
    except ValidationError as err:
        raise fail(describe_errors(err, "config")) from None
    except (
        ConfigError,
        ControllerBusyError,
        StateError,
        RegistryError,
        FileNotFoundError,
        ValueError,
        LookupError,
        sqlite3.Error,
    ) as err:
        raise fail(str(err.args[0]) if err.args else str(err)) from None
    except RuntimeError as err:
        raise fail(str(err)) from None
    except Exception as err:
        if type(err).__module__.partition(".")[0] == "psycopg":  # a PostgreSQL state or log
            raise fail(f"the PostgreSQL database refused: {err}") from None
        if type(err).__name__ != "MlflowException":
            raise
        raise fail(f"the MLflow store refused: {err}") from None


def _config(path: Path) -> CTConfig:
    from recops.ct import load_ct_config

    return load_ct_config(path)


def _controller(path: Path, progress: bool) -> Controller:
    from recops.ct import Controller
    from recops.pipelines.progress import Reporter

    reporter = Reporter(Console(stderr=True)) if progress else None
    return Controller(_config(path), reporter=reporter)


def _when(stamp: float | None) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


def decision_table(decisions: list[Decision], title: str) -> Table:
    """The decisions as a rich table: when, which cycle, the transition, the action, why."""
    table = Table(title=title, show_lines=True)
    for column in ("#", "at", "cycle", "transition", "action", "reason"):
        table.add_column(column, justify="right" if column in ("#", "cycle") else "left")
    for d in decisions:
        move = d.state_from if d.state_from == d.state_to else f"{d.state_from} → {d.state_to}"
        table.add_row(
            str(d.id), _when(d.at), "" if d.cycle is None else str(d.cycle), move, d.action,
            d.reason,
        )  # fmt: skip
    return table


def _print_decisions(decisions: list[Decision], as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps({"decisions": [d.to_dict() for d in decisions]}, indent=2))
        return
    console = Console()
    if decisions:
        console.print(decision_table(decisions, title))
    else:
        console.print("no decision: nothing to do this round")


@ct_app.command("step")
def step(config: ConfigOption, now: NowOption = None, as_json: JsonOption = False) -> None:
    """Make one round: check the triggers or advance the cycle in flight as far as it can go."""
    with _user_errors(), _controller(config, progress=not as_json) as controller:
        decisions = controller.step(now)
        state = controller.state
    _print_decisions(decisions, as_json, f"recops ct step · {state.model} · now {state.state}")


@ct_app.command("train")
def train(
    config: ConfigOption,
    reason: Annotated[str, typer.Option("--reason", "-m", help="Why: logged with the cycle.")],
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a cycle now (a manual trigger), from idle; the rest of the round follows."""
    with _user_errors(), _controller(config, progress=not as_json) as controller:
        decisions = controller.train_now(now, reason=reason)
        state = controller.state
    _print_decisions(decisions, as_json, f"recops ct train · {state.model} · now {state.state}")


@ct_app.command("run")
def run(
    config: ConfigOption,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many rounds (default: never).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Step every poll_interval_s until SIGINT/SIGTERM; print each decision as it is made."""
    stop = {"asked": False}

    def ask_stop(signum: int, frame: FrameType | None) -> None:
        stop["asked"] = True

    def nap(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not stop["asked"] and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    console = Console()

    def show(decision: Decision) -> None:
        if as_json:
            typer.echo(json.dumps(decision.to_dict()))
        else:
            console.print(
                f"{_when(decision.at)} cycle {decision.cycle or '-'} "
                f"{decision.state_from} → {decision.state_to} [{decision.action}] "
                f"{decision.reason}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    previous = [signal.signal(s, ask_stop) for s in (signal.SIGINT, signal.SIGTERM)]
    try:
        with _user_errors(), _controller(config, progress=not as_json) as controller:
            if not as_json:
                console.print(
                    f"recops ct: controlling {controller.model!r} every "
                    f"{controller.config.poll_interval_s:g} s (state: {controller.state.state}); "
                    "Ctrl-C stops after the current round",
                    markup=False,
                )
            controller.run(
                should_stop=lambda: stop["asked"], sleep=nap, on_decision=show,
                max_steps=max_steps,
            )  # fmt: skip
    finally:
        for s, handler in zip((signal.SIGINT, signal.SIGTERM), previous, strict=True):
            signal.signal(s, handler)


def _status(controller: Controller) -> dict[str, Any]:
    state = controller.state
    registry = controller.registry
    champion = registry.champion(controller.model)
    challenger = registry.challenger(controller.model)
    cycle = None if state.cycle is None else controller.store.cycle(state.cycle).to_dict()
    return {
        "model": state.model,
        "state": state.state,
        "cycle": cycle,
        "champion": None if champion is None else champion.version,
        "champion_since": state.champion_since,
        "challenger": None if challenger is None else challenger.version,
        "last_training": state.last_training,
        "watermark": state.watermark,
        "last_check": state.last_check,
        "state_store": controller.store.location,
        "cycles": len(controller.store.cycles(state.model)),
    }


@ct_app.command("status")
def status(config: ConfigOption, as_json: JsonOption = False) -> None:
    """Where the controller is: its state, the cycle in flight, aliases, the last findings."""
    with _user_errors(), _controller(config, progress=False) as controller:
        found = _status(controller)
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    console = Console()
    table = Table(title=f"recops ct · {found['model']}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("state", found["state"])
    table.add_row(
        "champion", f"{found['champion'] or '-'} (since {_when(found['champion_since'])})"
    )
    table.add_row("challenger", found["challenger"] or "-")
    table.add_row("last training", _when(found["last_training"]) or "never")
    table.add_row("cycles", str(found["cycles"]))
    cycle = found["cycle"]
    if cycle is not None:
        table.add_row("cycle", f"{cycle['id']}: {cycle['trigger']}: {cycle['reason']}")
        table.add_row("candidate", f"version {cycle['version'] or '-'} (run {cycle['run_id']})")
        if cycle["experiment"]:
            table.add_row(
                "test", f"{cycle['experiment']} since {_when(cycle['experiment_started_at'])}"
            )
        if cycle["watch"]:
            table.add_row("watch", f"{cycle['watch']} since {_when(cycle['watch_started_at'])}")
    check = found["last_check"]
    for key in ("reason", "analysis", "watch"):
        value = check.get(key)
        if isinstance(value, dict):
            value = "; ".join(value.get("reasons", [])) or value.get("call")
        if value:
            table.add_row(f"last {key}" if key != "reason" else "last check", str(value))
    table.add_row("state store", found["state_store"])
    console.print(table)


@ct_app.command("log")
def log(
    config: ConfigOption,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the last N decisions.")] = None,
    cycle: Annotated[int | None, typer.Option(min=1, help="Only this cycle's decisions.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every decision the controller made, oldest first, each with its reason."""
    with _user_errors(), _controller(config, progress=False) as controller:
        decisions = controller.store.decisions(controller.model)
    if cycle is not None:
        decisions = [d for d in decisions if d.cycle == cycle]
    if limit is not None:
        decisions = decisions[-limit:]
    if as_json:
        typer.echo(json.dumps({"decisions": [d.to_dict() for d in decisions]}, indent=2))
        return
    Console().print(decision_table(decisions, f"recops ct log · {len(decisions)} decisions"))


@ct_app.command("demo")
def demo(
    out: Annotated[
        Path, typer.Option(help="Folder for the world, the logs, the registry and the models.")
    ] = Path("recops-ct-demo"),
    quick: Annotated[bool, typer.Option(help="A smaller world and fewer epochs.")] = False,
    users: Annotated[int | None, typer.Option(min=100, help="Users of the world.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the world.")] = 0,
) -> None:
    """The loop on a drifting world: drift noticed, retrained, gated, A/B tested, promoted."""
    from recops.cli.demo_ct import ct_demo

    with _user_errors():
        ct_demo(Console(), out, quick=quick, users=users, seed=seed)
