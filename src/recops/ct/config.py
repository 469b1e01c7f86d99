"""The continuous-training controller's configuration (TOML, YAML or JSON), validated by pydantic.

Every section has defaults; a file names the event log and the training pipeline::

    event_log = "recops-events.sqlite3"   # the server's log (and its experiment store):
                                          # a SQLite file or a postgresql:// URL
    pipeline = "train.toml"               # the gated training pipeline's config, or a
                                          # [pipeline] table (recops.registry.config)
    # state = "recops-ct.sqlite3"         # default: beside a SQLite event log, in the
                                          # database of a PostgreSQL one
    poll_interval_s = 60                  # `recops ct run`: seconds between two steps

    [triggers]
    bootstrap = true                      # no champion yet: train one
    min_interval_s = 3600                 # never two trainings closer than this
    schedule = { every_s = 604800 }       # at least weekly (omit: off)
    volume = { min_new_events = 5000 }    # positive events since the last training
    [triggers.drift]                      # the monitor's should_retrain
    reference_window_s = 86400            # the champion's first day in service ...
    current_window_s = 86400              # ... against the last day
    monitor = { psi_threshold = 0.1 }     # recops.monitoring.MonitorConfig

    [experiment]                          # challenger against champion
    type = "ab"                           # or "interleaving"
    traffic = 1.0
    challenger_weight = 0.5
    primary_metric = "clicks/impressions"
    guardrails = [                        # must not get worse
        { metric = "clicks/requests", direction = "decrease", max_relative_change = 0.05 },
    ]
    min_units = 100                       # per variant, before any decision
    min_duration_s = 86400                # before shipping
    max_duration_s = 604800               # then: not shipped (inconclusive)

    [watch]                               # after a promotion: a holdback on the old champion
    holdback = 0.1                        # 0: no watch
    duration_s = 86400
    min_units = 100

The model is the pipeline's ``publish.name``; the registry is its ``[registry]``.
Relative paths are relative to the working directory, as in the pipeline's config.
:func:`load_ct_config` names the file, the field and what to fix on any error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recops.config_files import describe_errors
from recops.experiments.config import GreedySpec, GuardrailSpec, MetricName, Name, PolicySpec
from recops.monitoring.config import FeatureRule, MonitorConfig
from recops.pipelines.training.config import ConfigError, load_config, read_file_lines
from recops.postgres import is_postgres_url
from recops.registry.config import GatedTrainingConfig

DAY = 86_400
STATE_FILE = "recops-ct.sqlite3"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleTrigger(_Section):
    """Retrain when the last training is ``every_s`` seconds old."""

    every_s: float = Field(gt=0, description="Seconds between two scheduled trainings.")


class VolumeTrigger(_Section):
    """Retrain when this many positive events arrived since the last training's snapshot."""

    min_new_events: int = Field(ge=1, description="Positive events (split.events) since then.")


def _ct_monitor() -> MonitorConfig:
    # Scores of two model versions are not comparable, and every promotion changes the
    # version: a served_score drift is reported but never asks for retraining here.
    return MonitorConfig(features={"served_score": FeatureRule(retrain=False)})


class DriftTrigger(_Section):
    """Retrain when the monitor says so, comparing the last window with the champion's first.

    The reference is the champion's first ``reference_window_s`` in service (the
    same model served both windows, so its scores compare too); the current window
    is the last ``current_window_s``, judged once it lies wholly after the
    reference.
    """

    enabled: bool = True
    reference_window_s: int = Field(default=DAY, ge=60)
    current_window_s: int = Field(default=DAY, ge=60)
    monitor: MonitorConfig = Field(default_factory=_ct_monitor)


class TriggersConfig(_Section):
    """When to train: bootstrap, schedule, volume, drift (the first that fires wins)."""

    bootstrap: bool = Field(default=True, description="Train when there is no champion.")
    min_interval_s: float = Field(default=0.0, ge=0, description="Least time between trainings.")
    schedule: ScheduleTrigger | None = None
    volume: VolumeTrigger | None = None
    drift: DriftTrigger = Field(default_factory=DriftTrigger)


def _default_guardrails() -> tuple[GuardrailSpec, ...]:
    clicks = GuardrailSpec(metric="clicks/requests", direction="decrease", max_relative_change=0.05)
    return (clicks,)


class ExperimentTemplate(_Section):
    """The online test of a challenger against the champion (an experiment config's fields).

    ``min_units`` (per variant) and ``min_duration_s`` must be reached before a
    ship; a failed guardrail or a sample-ratio mismatch stops the test at once;
    past ``max_duration_s`` an undecided test ends as not shipped.
    """

    type: Literal["ab", "interleaving"] = "ab"
    layer: Name = "ct"
    traffic: float = Field(default=1.0, gt=0.0, le=1.0)
    challenger_weight: float = Field(default=0.5, gt=0.0, lt=1.0)
    primary_metric: MetricName = "clicks/impressions"
    guardrails: tuple[GuardrailSpec, ...] = Field(default_factory=_default_guardrails)
    control_policy: PolicySpec = Field(default_factory=GreedySpec)
    challenger_policy: PolicySpec = Field(default_factory=GreedySpec)
    decision: Literal["sequential", "fixed"] = "sequential"
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    min_units: int = Field(default=100, ge=2)
    min_duration_s: float = Field(default=DAY, ge=0)
    max_duration_s: float = Field(default=7 * DAY, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.max_duration_s < self.min_duration_s:
            raise ValueError(
                f"max_duration_s ({self.max_duration_s:g}) must be at least min_duration_s "
                f"({self.min_duration_s:g})"
            )
        if self.type == "interleaving" and self.challenger_weight != 0.5:
            raise ValueError(
                "an interleaving test shows both rankings to every unit: challenger_weight "
                "means nothing there, remove it"
            )
        return self


class WatchConfig(_Section):
    """After a promotion: keep ``holdback`` of the units on the old champion for a while.

    The guardrails are judged on that holdback (old champion as control); one that
    fails rolls ``champion`` back. ``holdback = 0`` promotes without a watch.
    """

    holdback: float = Field(default=0.1, ge=0.0, lt=1.0)
    duration_s: float = Field(default=DAY, ge=0)
    min_units: int = Field(default=100, ge=2)


class CTConfig(_Section):
    """The whole controller's configuration (see the module docstring)."""

    event_log: str = "recops-events.sqlite3"
    state: str | None = Field(
        default=None,
        description=f"a SQLite file or a postgresql:// URL; default: {STATE_FILE} beside a "
        "SQLite event_log, a PostgreSQL event_log's database",
    )
    snapshots: str | None = Field(
        default=None,
        description="data snapshots folder; default: recops-ct-snapshots beside a SQLite state, "
        "else in the working folder",
    )
    pipeline: GatedTrainingConfig = Field(default_factory=GatedTrainingConfig)
    poll_interval_s: float = Field(default=60.0, gt=0)
    actor: str = Field(default="recops-ct", min_length=1, max_length=100)
    triggers: TriggersConfig = Field(default_factory=TriggersConfig)
    experiment: ExperimentTemplate = Field(default_factory=ExperimentTemplate)
    watch: WatchConfig = Field(default_factory=WatchConfig)

    @field_validator("pipeline", mode="before")
    @classmethod
    def _pipeline_file(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return load_config(value, GatedTrainingConfig)
        return value

    @property
    def model(self) -> str:
        """The registered model: the pipeline's ``publish.name``."""
        return self.pipeline.publish.name

    @property
    def state_target(self) -> str | Path:
        """Where the controller's state lives (:func:`recops.ct.state.open_state_store`).

        ``state`` when given; else the event log's PostgreSQL database (a controller
        on a shared log keeps no local file), else ``recops-ct.sqlite3`` beside the
        SQLite event log.
        """
        if self.state:
            return self.state if is_postgres_url(self.state) else Path(self.state)
        if is_postgres_url(self.event_log):
            return self.event_log
        return Path(self.event_log).parent / STATE_FILE

    @property
    def snapshot_dir(self) -> Path:
        """Where each cycle's training data snapshot goes."""
        if self.snapshots:
            return Path(self.snapshots)
        state = self.state_target
        folder = state.parent if isinstance(state, Path) else Path()
        return folder / "recops-ct-snapshots"


def load_ct_config(path: str | Path) -> CTConfig:
    """The controller config in ``path``; ConfigError naming the file, field and fix."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file")
    data, lines = read_file_lines(file)
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a table (event_log, pipeline, triggers, ...)")
    pipeline = data.get("pipeline")
    if isinstance(pipeline, str):
        try:
            data = {**data, "pipeline": load_config(pipeline, GatedTrainingConfig)}
        except ConfigError as err:
            raise ConfigError(f"{file}: field `pipeline`: {err}") from None
    try:
        return CTConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_errors(err, str(file), lines)) from None
