"""Experiments as validated config files (TOML or YAML).

An experiment is a small file: a name and a salt, a layer, the unit it randomises,
its traffic, the variants (each a model version or alias with a ranking policy), the
primary and guardrail metrics. :func:`load_experiment` reads one and refuses anything
that would run wrong, with a message naming the file, the line (where the parser
gives one) and the field to fix::

    ranker.toml, line 14, field 'variants[1].weight': Input should be greater than 0 (got 0)

Model versions and aliases are checked against a :class:`ModelResolver` that the
caller passes (the CLI builds one from the model repository), so this module never
imports the server.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Protocol, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from recops.config_files import Lines, parse_config_text, where
from recops.experiments.assignment import BUCKETS, share_to_buckets, split_points
from recops.experiments.serving_policy import MAX_HEAD_SUBSETS

#: Experiment, layer and variant names: they appear in logs, URLs and file names.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Model names, versions and aliases: path components of the model repository.
_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Variant labels that the assignment uses for units that see no single variant.
HOLDOUT = "holdout"
INTERLEAVED = "interleaved"
_RESERVED = (HOLDOUT, INTERLEAVED)

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
#: No ':' in a salt: the hashes of layers ("layer:<name>") and holdouts ("<salt>:holdout")
#: then never coincide with an experiment's variant hash.
_SALT_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"


def _version_text(value: object) -> object:
    # YAML and TOML read `version = 3` as an int; a version is a name, not a number.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


ModelPart = Annotated[str, Field(pattern=_MODEL_PATTERN)]
VersionPart = Annotated[str, BeforeValidator(_version_text), Field(pattern=_MODEL_PATTERN)]


class ExperimentConfigError(ValueError):
    """An experiment config that cannot be used; the message says what to fix."""


def _fail(loc: tuple[str | int, ...], message: str) -> PydanticCustomError:
    """A validation error at ``loc`` (a field path), raised from a cross-field check."""
    return PydanticCustomError(
        "experiment", message.replace("{", "(").replace("}", ")"), {"loc": loc}
    )


def parse_metric(name: str) -> tuple[str, str | None]:
    """Split a metric name into ``(numerator, denominator)``.

    A per-unit mean metric is one column (``"clicks"`` → ``("clicks", None)``); a
    ratio metric is ``num/den`` of two per-unit columns (``"clicks/impressions"``),
    analysed with the delta method.
    """
    parts = name.split("/") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 2 or not all(_COLUMN.match(p) for p in parts):
        raise ValueError(
            "a metric is a column name (`clicks`) or a ratio of two (`clicks/impressions`): "
            f"letters, digits and '_', not starting with a digit (got {name!r})"
        )
    if len(parts) == 2 and parts[0] == parts[1]:
        raise ValueError(f"a ratio metric needs two different columns (got {name!r})")
    return parts[0], parts[1] if len(parts) == 2 else None


def _metric(name: object) -> str:
    parse_metric(name)  # type: ignore[arg-type]
    return name  # type: ignore[return-value]


MetricName = Annotated[str, BeforeValidator(_metric)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PolicySpec(_Spec):
    kind: str  # declared first so that `kind` leads every dumped policy


class _ExploringSpec(_PolicySpec):
    pool: int = Field(
        default=20, ge=1, le=1000, description="Best candidates of the model's ranking it may show."
    )
    explore_slots: int = Field(
        default=3, ge=1, le=50, description="First positions that are randomised."
    )

    @model_validator(mode="after")
    def _slots_within_pool(self) -> Self:
        if self.explore_slots > self.pool:
            raise _fail(
                ("explore_slots",),
                f"explore_slots ({self.explore_slots}) must not exceed pool ({self.pool})",
            )
        # Plackett–Luce heads enumerate the pool's subsets per request for exact
        # propensities: refuse here what the server's policy step would refuse.
        subsets = math.comb(self.pool, self.explore_slots)
        if self.kind in ("plackett_luce", "softmax_bandit") and subsets > MAX_HEAD_SUBSETS:
            raise _fail(
                ("explore_slots",),
                f"C(pool, explore_slots) = {subsets:,} exceeds {MAX_HEAD_SUBSETS:,}: exact "
                "propensities would cost too much per request; lower explore_slots or pool",
            )
        return self


class GreedySpec(_PolicySpec):
    """The model's top-k ranking, deterministic (propensity 1)."""

    kind: Literal["greedy"] = "greedy"


class EpsilonGreedySpec(_ExploringSpec):
    """With probability ε the first ``explore_slots`` come uniformly from the ``pool`` best."""

    kind: Literal["epsilon_greedy"]
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0)


class PlackettLuceSpec(_ExploringSpec):
    """Softmax sampling without replacement of the first ``explore_slots``, temperature τ."""

    kind: Literal["plackett_luce"]
    temperature: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)


class SoftmaxBanditSpec(_ExploringSpec):
    """Softmax over model score plus a bonus from each item's click-through (Beta prior)."""

    kind: Literal["softmax_bandit"]
    temperature: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    prior_ctr: float = Field(default=0.05, gt=0.0, lt=1.0)
    prior_weight: float = Field(default=20.0, gt=0.0, allow_inf_nan=False)
    bonus: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)


PolicySpec = Annotated[
    GreedySpec | EpsilonGreedySpec | PlackettLuceSpec | SoftmaxBanditSpec,
    Field(discriminator="kind"),
]
_POLICY_SPECS: dict[str, type[_PolicySpec]] = {
    "greedy": GreedySpec,
    "epsilon_greedy": EpsilonGreedySpec,
    "plackett_luce": PlackettLuceSpec,
    "softmax_bandit": SoftmaxBanditSpec,
}
POLICY_KINDS = tuple(_POLICY_SPECS)


class GuardrailSpec(_Spec):
    """A metric that must not get worse by more than ``max_relative_change``.

    ``direction`` says which change is harm: ``"increase"`` for latency or
    unsubscribes, ``"decrease"`` for clicks or revenue.
    """

    metric: MetricName
    direction: Literal["increase", "decrease"]
    max_relative_change: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)


class VariantConfig(_Spec):
    """One arm: a model version (or alias) served through a ranking policy.

    ``weight`` is relative: weights are normalised over the variants. ``model``
    defaults to the model the server serves; give ``version`` or ``alias``.
    """

    name: Name
    weight: float = Field(default=1.0, gt=0.0, allow_inf_nan=False)
    model: ModelPart | None = None
    version: VersionPart | None = None
    alias: ModelPart | None = None
    policy: PolicySpec = Field(default_factory=GreedySpec)

    @model_validator(mode="after")
    def _version_or_alias(self) -> Self:
        if (self.version is None) == (self.alias is None):
            given = "both" if self.version is not None else "neither"
            raise _fail(
                ("version",),
                f'give one of `version` (e.g. "3") or `alias` (e.g. "latest"), got {given}',
            )
        return self

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in _RESERVED:
            raise ValueError(
                f"{value!r} is reserved (the assignment labels units {' and '.join(_RESERVED)}"
                " with it): choose another variant name"
            )
        return value


class ExperimentConfig(_Spec):
    """An A/B or interleaving experiment, as written in its TOML or YAML file.

    Parameters
    ----------
    name:
        Unique name; it tags every exposure and assignment.
    salt:
        Seeds the variant hash (default: ``name``); never change it once started.
    layer:
        Experiments in one layer are mutually exclusive (each owns a segment of the
        layer's buckets); different layers are independent.
    type:
        ``"ab"``, or ``"interleaving"`` (team-draft, exactly two variants).
    unit:
        The id randomised: ``"user_id"`` or ``"anonymous_id"``.
    traffic:
        Share of the layer's units in the experiment, in (0, 1].
    max_traffic:
        Share of the layer reserved for the experiment (default: ``traffic``);
        ``recops experiment ramp`` may raise ``traffic`` up to it (or further, into
        free buckets right after the segment) without moving any unit.
    holdout:
        Share of the experiment's units kept on control and not analysed as a
        variant, in [0, 1).
    control:
        The variant others are compared with.
    start, stop:
        Optional window (with a UTC offset, e.g. ``2026-12-01T00:00:00Z``).
    primary_metric:
        ``col`` or ``num/den`` (see :func:`parse_metric`).
    guardrails:
        Metrics that must not get worse.
    variants:
        At least two; exactly two for interleaving.
    """

    name: Name
    salt: str = Field(pattern=_SALT_PATTERN)
    layer: Name = "default"
    type: Literal["ab", "interleaving"] = "ab"
    unit: Literal["user_id", "anonymous_id"] = "user_id"
    traffic: float = Field(default=1.0, gt=0.0, le=1.0)
    max_traffic: float | None = Field(default=None, gt=0.0, le=1.0)
    holdout: float = Field(default=0.0, ge=0.0, lt=1.0)
    control: Name
    start: AwareDatetime | None = None
    stop: AwareDatetime | None = None
    primary_metric: MetricName
    guardrails: tuple[GuardrailSpec, ...] = ()
    variants: tuple[VariantConfig, ...]

    @model_validator(mode="before")
    @classmethod
    def _salt_defaults_to_name(cls, values: Any) -> Any:
        if isinstance(values, Mapping) and values.get("salt") is None and "name" in values:
            return {**values, "salt": values["name"]}
        return values

    @field_validator("variants", mode="before")
    @classmethod
    def _two_or_more(cls, values: Any) -> Any:
        # Before validation: a count after it would leave out the invalid variants.
        if isinstance(values, list | tuple) and len(values) < 2:
            raise ValueError(
                "an experiment needs at least 2 variants: the control and one to compare "
                f"with it (got {len(values)})"
            )
        return values

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        names = [v.name for v in self.variants]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise _fail(("variants", i, "name"), f"variant name {name!r} is used twice")
        if self.control not in names:
            raise _fail(
                ("control",),
                f"control {self.control!r} is not one of the variants ({', '.join(names)})",
            )
        if self.type == "interleaving":
            if len(names) != 2:
                raise _fail(
                    ("variants",),
                    f"an interleaving experiment merges exactly 2 rankings (got {len(names)})",
                )
            if self.variants[0].weight != self.variants[1].weight:
                raise _fail(
                    ("variants", 1, "weight"),
                    "an interleaving experiment shows both rankings to every unit: "
                    "weights mean nothing there, remove them",
                )
        if share_to_buckets(self.traffic) < 1:
            raise _fail(("traffic",), f"traffic must be at least {1 / BUCKETS} (one bucket)")
        if self.holdout > 0 and not 1 <= share_to_buckets(self.holdout) < BUCKETS:
            raise _fail(
                ("holdout",),
                f"holdout must be 0 or between {1 / BUCKETS} and {1 - 1 / BUCKETS} (whole buckets)",
            )
        points = split_points([v.weight for v in self.variants])
        for i, (low, high) in enumerate(zip([0, *points], points, strict=False)):
            if high == low:
                raise _fail(
                    ("variants", i, "weight"),
                    f"weight {self.variants[i].weight} gives variant {names[i]!r} no bucket of "
                    f"{BUCKETS}: raise it (or drop the variant)",
                )
        if self.max_traffic is not None and self.max_traffic < self.traffic:
            raise _fail(
                ("max_traffic",),
                f"max_traffic ({self.max_traffic}) must be at least traffic ({self.traffic})",
            )
        if self.start is not None and self.stop is not None and self.stop <= self.start:
            raise _fail(
                ("stop",),
                f"stop ({self.stop.isoformat()}) must come after start ({self.start.isoformat()})",
            )
        metrics = [g.metric for g in self.guardrails]
        for i, metric in enumerate(metrics):
            if metric in metrics[:i]:
                raise _fail(("guardrails", i, "metric"), f"guardrail {metric!r} is listed twice")
        return self

    @property
    def reserved(self) -> float:
        """Share of the layer this experiment reserves (``max_traffic`` or ``traffic``)."""
        return self.traffic if self.max_traffic is None else self.max_traffic

    def variant(self, name: str) -> VariantConfig:
        """The variant called ``name``; KeyError if there is none."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"experiment {self.name!r} has no variant {name!r}")


class ModelRef(NamedTuple):
    """A model version in the repository."""

    model: str
    version: str


class ModelResolver(Protocol):
    """Turns a variant's (model, version, alias) into the exact version to serve.

    ``model`` None means the model the server serves. Raises LookupError (or
    ValueError) with a message saying what is missing when there is no such version
    or alias. The CLI builds one over the model repository; a registry with aliases
    (``champion``, ``challenger``) is another.
    """

    def __call__(self, model: str | None, version: str | None, alias: str | None) -> ModelRef: ...


def resolve_variants(
    config: ExperimentConfig,
    resolve: ModelResolver,
    *,
    source: str = "experiment config",
    lines: Mapping[tuple[str | int, ...], int] | None = None,
) -> dict[str, ModelRef]:
    """The exact model version of each variant, or ExperimentConfigError naming the field."""
    out: dict[str, ModelRef] = {}
    problems: list[str] = []
    for i, variant in enumerate(config.variants):
        try:
            name, version = resolve(variant.model, variant.version, variant.alias)
        except (LookupError, ValueError) as exc:
            field = "version" if variant.version is not None else "alias"
            loc = ("variants", i, field)
            message = str(exc.args[0]) if exc.args else str(exc)
            problems.append(where(source, loc, lines) + f": {message}")
            continue
        out[variant.name] = ModelRef(str(name), str(version))
    if problems:
        raise ExperimentConfigError("\n".join(problems))
    return out


def parse_experiment(
    text: str,
    format: Literal["toml", "yaml"],
    *,
    source: str = "experiment config",
    resolve: ModelResolver | None = None,
) -> ExperimentConfig:
    """Validate an experiment config given as text (see :func:`load_experiment`)."""
    values, lines = _parse(text, format, source)
    try:
        config = ExperimentConfig.model_validate(values)
    except ValidationError as exc:
        raise ExperimentConfigError(_explain(exc, source, lines)) from None
    if resolve is not None:
        resolve_variants(config, resolve, source=source, lines=lines)
    return config


def load_experiment(path: str | Path, resolve: ModelResolver | None = None) -> ExperimentConfig:
    """Read and validate an experiment config file (``.toml``, ``.yaml`` or ``.yml``).

    Parameters
    ----------
    path:
        The file.
    resolve:
        Checks that each variant's version or alias exists; skipped when None.

    Raises
    ------
    ExperimentConfigError
        With one line per problem: the file, the line where known, the field path
        (``variants[1].policy.temperature``) and what to fix.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in {".toml", ".yaml", ".yml"}:
        raise ExperimentConfigError(
            f"{file}: an experiment config is a .toml, .yaml or .yml file (got {suffix or 'none'})"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentConfigError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentConfigError(f"{file}: cannot be read ({exc})") from None
    fmt: Literal["toml", "yaml"] = "toml" if suffix == ".toml" else "yaml"
    return parse_experiment(text, fmt, source=str(file), resolve=resolve)


# --- parsing, with the line of every key (recops.config_files) -----------------------


def _parse(text: str, fmt: Literal["toml", "yaml"], source: str) -> tuple[dict[str, Any], Lines]:
    values, lines = parse_config_text(text, fmt, source, ExperimentConfigError)
    if not isinstance(values, dict):
        raise ExperimentConfigError(
            f"{source}: expected a table of experiment fields (got {type(values).__name__})"
        )
    return values, lines


# --- messages ------------------------------------------------------------------------


def _clean_loc(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    # A discriminated union puts the tag in the path: (..., "policy", "plackett_luce", "pool").
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "policy" and part in POLICY_KINDS:
            continue
        out.append(part)
    return tuple(out)


def _fields_at(loc: tuple[str | int, ...], kind: object) -> list[str]:
    """Field names of the model that holds the last element of ``loc`` (for suggestions)."""
    model: type[BaseModel] = ExperimentConfig
    if loc[:1] == ("variants",):
        model = VariantConfig
        if "policy" in loc[:-1]:
            model = _POLICY_SPECS.get(str(kind), SoftmaxBanditSpec)
    elif loc[:1] == ("guardrails",):
        model = GuardrailSpec
    return list(model.model_fields)


_PATTERN_RULES = {
    NAME_PATTERN: "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    _MODEL_PATTERN: "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
    _SALT_PATTERN: "use 1-128 letters, digits, '.', '_' or '-' (no ':')",
}


def _explain(exc: ValidationError, source: str, lines: Lines) -> str:
    out = [f"invalid experiment config ({len(exc.errors())} problem(s)):"]
    for err in exc.errors():
        raw = tuple(err["loc"])
        inner = tuple(err.get("ctx", {}).get("loc", ())) if err["type"] == "experiment" else ()
        loc = _clean_loc(raw + inner)
        kind = raw[raw.index("policy") + 1] if "policy" in raw[:-1] else None
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _fields_at(loc, kind), n=1)
            hint = f"did you mean `{close[0]}`?" if close else "remove it"
            message = f"unknown field: {hint}"
        elif err["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            message = f"`kind` must be one of {', '.join(POLICY_KINDS)}"
            tag = err["input"].get("kind") if isinstance(err["input"], dict) else None
            message += f" (got {tag!r})" if tag is not None else " (got none)"
        elif err["type"] == "timezone_aware":
            message = "give a UTC offset, e.g. 2026-12-01T00:00:00Z"
        elif err["type"] == "string_pattern_mismatch":
            rule = _PATTERN_RULES.get(err.get("ctx", {}).get("pattern", ""), "see the docs")
            message = f"{rule} (got {err['input']!r})"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if (
                err["type"] != "experiment"
                and "input" in err
                and not isinstance(err["input"], dict | list)
            ):
                shown = (
                    err["input"].isoformat() if isinstance(err["input"], datetime) else err["input"]
                )
                message += f" (got {shown!r})"
        out.append(f"  - {where(source, loc, lines)}: {message}")
    return "\n".join(out)
