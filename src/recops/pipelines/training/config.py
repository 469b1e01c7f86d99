"""The training pipeline's configuration (TOML, YAML or JSON), validated by pydantic.

Every section has defaults, so an empty file trains on the built-in world::

    [source]                      # where the events come from: one of
    kind = "world"                #   world | dataset | files | event_log
    world = { n_users = 1000, n_items = 2000, days = 21, seed = 0 }
    # kind = "dataset", name = "ml-100k", data_dir = "...", download = false
    # kind = "files", interactions = "events.csv", catalog = "items.csv"
    # kind = "event_log", path = "recops-events.sqlite3", catalog = "items.parquet"

    [checks]                      # data checks against the last successful run
    max_volume_change = 0.5       # |positives / last run's − 1| at most this
    max_category_distance = 0.2   # Jensen–Shannon distance of the category mix
    fail_on_check = false         # true: a failed check stops the run

    [split]
    events = ["click"]            # event types that are positives
    min_rating = 4.0              # ratings: keep value >= this (optional)
    quantile = 0.8                # train on the first 80% of the events by time
    n_cold_history = 3

    [model]                       # TwoTowerConfig fields
    epochs = 8

    [evaluate]
    ks = [10, 20]
    n_boot = 200

    [ope]                         # OPE of the new model on the server's exposures
    event_log = "recops-events.sqlite3"   # default: the source's, if it is one
    max_requests = 20000
    min_requests = 100

    [publish]                     # the model repository `recops serve --models` reads
    repository = "models"
    name = "two_tower"

    [storage]
    artifacts = "recops-data/pipelines/artifacts"   # or s3://bucket/prefix
    runs = "recops-data/pipelines/runs.sqlite3"

    [kfp]
    image = "recops:0.1.0"

Relative paths are relative to the working directory. :func:`load_config` names the
file, the field and what to fix on any error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recops.config_files import Format, Lines, describe_errors, parse_config_text
from recops.data.world import WorldConfig
from recops.models.two_tower import TwoTowerConfig

DEFAULT_IMAGE = "recops:0.1.0"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _demo_world() -> WorldConfig:
    return WorldConfig(n_users=1_000, n_items=2_000, days=21, seed=0)


class WorldSource(_Section):
    """Events and catalog drawn from the built-in world (ground truth known)."""

    kind: Literal["world"] = "world"
    world: WorldConfig = Field(default_factory=_demo_world)


class DatasetSource(_Section):
    """A public dataset through ``recops.data.loaders.load_dataset``."""

    kind: Literal["dataset"]
    name: str = Field(description="ml-100k, ml-latest-small, mind-small or obd")
    data_dir: str | None = Field(
        default=None, description="folder holding <name>/ ($RECOPS_DATA_DIR)"
    )
    download: bool = False


class FilesSource(_Section):
    """Your own interactions (and catalog) as CSV/TSV/Parquet."""

    kind: Literal["files"]
    interactions: str = Field(description="user_id,item_id,timestamp[,event,value]")
    catalog: str | None = None


class EventLogSource(_Section):
    """The server's event log: a SQLite file (``recops serve --event-log``) or a PostgreSQL URL."""

    kind: Literal["event_log"]
    path: str = "recops-events.sqlite3"
    catalog: str | None = Field(default=None, description="the catalog the server serves, if any")


Source = Annotated[
    WorldSource | DatasetSource | FilesSource | EventLogSource, Field(discriminator="kind")
]


class ChecksConfig(_Section):
    """Volume and distribution checks of the data against the last successful run."""

    max_volume_change: float = Field(default=0.5, gt=0)
    max_category_distance: float = Field(default=0.2, ge=0, le=1)
    fail_on_check: bool = False


class SplitConfig(_Section):
    """Which events are positives, and the global temporal split."""

    events: tuple[str, ...] = Field(default=("click",), min_length=1)
    min_rating: float | None = None
    quantile: float = Field(default=0.8, gt=0, lt=1)
    n_cold_history: int = Field(default=3, ge=0, le=1000)


class EvaluateConfig(_Section):
    """Offline metrics of the new model and of the champion on the same split."""

    ks: tuple[int, ...] = Field(default=(10, 20), min_length=1)
    n_boot: int = Field(default=200, ge=10, le=100_000)


class OPEConfig(_Section):
    """Off-policy evaluation of the new model on recent exposures."""

    event_log: str | None = None
    max_requests: int = Field(default=20_000, ge=1)
    min_requests: int = Field(default=100, ge=1)


class PublishConfig(_Section):
    """Where the new version goes: ``<repository>/<name>/<version>/``."""

    repository: str = "models"
    name: str = Field(default="two_tower", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StorageConfig(_Section):
    """Artifact store URL and run store file (defaults under ``$RECOPS_HOME``)."""

    artifacts: str | None = None
    runs: str | None = None


class KfpConfig(_Section):
    """The container image every Kubeflow component runs in."""

    image: str = Field(default=DEFAULT_IMAGE, min_length=1)


class TrainingConfig(_Section):
    """The whole training pipeline's configuration (see the module docstring)."""

    source: Source = Field(default_factory=WorldSource)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: TwoTowerConfig = Field(default_factory=lambda: TwoTowerConfig.model_validate({}))
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    ope: OPEConfig = Field(default_factory=OPEConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    kfp: KfpConfig = Field(default_factory=KfpConfig)

    def exposure_log(self) -> str | None:
        """The event log OPE reads: ``ope.event_log``, else the source's if it is one."""
        if self.ope.event_log is not None:
            return self.ope.event_log
        if isinstance(self.source, EventLogSource):
            return self.source.path
        return None


class ConfigError(ValueError):
    """A pipeline config that cannot be used; the message says where and what to fix."""


def read_file(path: Path) -> Any:
    """The table in a TOML, YAML or JSON file; ConfigError naming the file and the problem."""
    return read_file_lines(path)[0]


def read_file_lines(path: Path) -> tuple[Any, Lines]:
    """Like :func:`read_file`, with the line of each key (:mod:`recops.config_files`)."""
    suffix = path.suffix.lower()
    formats: dict[str, Format] = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
    if suffix not in formats:
        raise ConfigError(
            f"{path}: a pipeline config is .toml, .yaml or .json (got '{path.suffix}')"
        )
    text = path.read_text(encoding="utf-8")
    values, lines = parse_config_text(text, formats[suffix], str(path), ConfigError)
    return ({} if values is None else values), lines


def load_config(
    path: str | Path | None, schema: type[TrainingConfig] = TrainingConfig
) -> TrainingConfig:
    """The config in ``path`` (defaults when None) as ``schema``; ConfigError saying what to fix.

    ``schema`` is :class:`TrainingConfig` or a subclass with more sections (the gated
    pipeline's ``recops.registry.config.GatedTrainingConfig``).
    """
    if path is None:
        return schema()
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file")
    data, lines = read_file_lines(file)
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a table of sections (source, split, model, ...)")
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_errors(err, str(file), lines)) from None
