"""The configuration of the built-in world: every knob of the generative story.

Each field's description says what it controls; the bounds keep the world small
enough to build in memory and the probabilities meaningful. Invalid values raise a
:class:`WorldConfigError` that names the field, the value and what to fix.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# 2024-01-01T00:00:00Z: a fixed epoch start so that the same seed gives the same
# timestamps on every machine and every day.
DEFAULT_START_TIME = 1_704_067_200
SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400

# Daily interest knots are kept for every user; this cap keeps them (float32) under
# about 800 MB.
MAX_INTEREST_KNOTS = 200_000_000


class WorldConfigError(ValueError):
    """A world configuration that cannot be used; the message says what to fix."""


class WorldConfig(BaseModel):
    """Parameters of the simulated news site (catalog, users, click model, logging).

    Examples
    --------
    >>> WorldConfig(n_users=500, n_items=1_000, days=7, seed=3).slate_size
    10
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(default=0, ge=0, description="Seed of every random draw of the world.")
    n_users: int = Field(default=2_000, ge=1, le=10_000_000, description="Users over the period.")
    n_items: int = Field(default=5_000, ge=1, le=10_000_000, description="Items in the catalog.")
    n_categories: int = Field(default=12, ge=2, le=200, description="Number of news categories.")
    n_regions: int = Field(default=4, ge=1, le=100, description="Home regions of users.")
    days: int = Field(default=30, ge=1, le=365, description="Length of the simulated period.")
    start_time: int = Field(
        default=DEFAULT_START_TIME, ge=0, description="Unix second at which the period starts."
    )

    # Catalog.
    latent_dim: int = Field(default=16, ge=1, le=256, description="Size of the latent vectors.")
    backlog_days: float = Field(
        default=2.0,
        ge=0,
        le=365,
        description="Days before the start over which items already exist.",
    )
    secondary_category_probability: float = Field(
        default=0.3, ge=0, le=1, description="Chance that an item also has a second category."
    )
    category_concentration: float = Field(
        default=5.0,
        gt=0,
        description="Dirichlet concentration of category sizes (large: equal sizes).",
    )
    latent_category_weight: float = Field(
        default=0.7, ge=0, le=1, description="Share of an item's latent vector set by its category."
    )
    words_per_category: int = Field(
        default=40, ge=1, le=2_000, description="Vocabulary per category."
    )
    shared_words: int = Field(
        default=150, ge=1, le=20_000, description="Words shared by categories."
    )
    title_min_words: int = Field(default=4, ge=1, le=30, description="Shortest title, in words.")
    title_max_words: int = Field(default=9, ge=1, le=30, description="Longest title, in words.")
    title_category_word_fraction: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Chance that a title word comes from the item's category.",
    )

    # Users.
    initial_user_fraction: float = Field(
        default=0.7, ge=0, le=1, description="Share of users signed up before the period starts."
    )
    requests_per_user_per_day: float = Field(
        default=1.0, gt=0, le=1_000, description="Mean visits of an average user on an average day."
    )
    activity_sigma: float = Field(
        default=1.0, ge=0, le=5, description="Log-normal spread of activity (heavy vs light users)."
    )
    interest_concentration: float = Field(
        default=0.3,
        gt=0,
        le=100,
        description="Dirichlet concentration of interests (small: focused).",
    )
    drift_rate: float = Field(
        default=0.15, ge=0, le=10, description="Daily std of the random walk of interest logits."
    )
    interest_shift_probability: float = Field(
        default=0.02, ge=0, le=1, description="Daily chance that a user adopts a new main interest."
    )
    shock_day: int | None = Field(
        default=None,
        ge=1,
        description="Day on whose start every user's interest in `shock_category` jumps "
        "(a population-wide drift event for monitoring tests); None: no shock.",
    )
    shock_category: int = Field(default=0, ge=0, description="Category boosted by the shock.")
    shock_strength: float = Field(
        default=2.0, description="Logit added to `shock_category` by the shock."
    )
    time_of_day_amplitude: float = Field(
        default=0.5, ge=0, lt=1, description="Relative swing of traffic over the day (0: flat)."
    )
    peak_hour: float = Field(default=20.0, ge=0, lt=24, description="UTC hour of the traffic peak.")

    # Click model.
    position_bias: float = Field(
        default=1.0, ge=0, le=10, description="eta in examination(p) = (1 / (p + 1)) ** eta."
    )
    freshness_half_life_hours: float = Field(
        default=24.0, gt=0, description="Hours after which an item's attraction odds halve."
    )
    max_item_age_hours: float = Field(
        default=72.0, gt=0, description="Items older than this are no longer shown."
    )
    base_logit: float = Field(
        default=-1.0, description="Attractiveness logit of a neutral fresh item."
    )
    interest_weight: float = Field(
        default=4.0, ge=0, description="Weight of the user's interest in the item's categories."
    )
    latent_weight: float = Field(default=1.0, ge=0, description="Weight of the latent affinity.")
    quality_std: float = Field(default=0.5, ge=0, description="Std of the latent item quality.")

    # Logging policy.
    slate_size: int = Field(default=10, ge=1, le=50, description="Items shown per request.")
    exploration: float = Field(
        default=0.2, ge=0, le=1, description="Chance that the logging policy shows a random slate."
    )
    popularity_window_hours: float = Field(
        default=6.0, gt=0, description="Clicks counted by the logging policy's popularity ranking."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.title_min_words > self.title_max_words:
            raise ValueError(
                f"title_min_words ({self.title_min_words}) must not exceed "
                f"title_max_words ({self.title_max_words})"
            )
        if self.shock_day is not None and self.shock_day > self.days:
            raise ValueError(
                f"shock_day ({self.shock_day}) must be within the period: 1..days ({self.days})"
            )
        if self.shock_category >= self.n_categories:
            raise ValueError(
                f"shock_category ({self.shock_category}) must be a category index in "
                f"0..n_categories - 1 ({self.n_categories - 1})"
            )
        knots = self.n_users * (self.days + 1) * self.n_categories
        if knots > MAX_INTEREST_KNOTS:
            raise ValueError(
                f"n_users * (days + 1) * n_categories = {knots:,} interest knots exceed "
                f"{MAX_INTEREST_KNOTS:,}: lower n_users, days or n_categories"
            )
        return self

    @property
    def end_time(self) -> int:
        """Unix second at which the period ends (exclusive)."""
        return self.start_time + self.days * SECONDS_PER_DAY

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> WorldConfig:
        """Validate ``values``; errors name the field, the value and the rule broken."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise WorldConfigError(_explain(exc, source)) from None

    @classmethod
    def from_json(cls, path: str | Path) -> WorldConfig:
        """Read a JSON object of fields (missing fields keep their defaults)."""
        file = Path(path)
        try:
            values = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorldConfigError(f"world config {file} does not exist") from None
        except json.JSONDecodeError as exc:
            raise WorldConfigError(
                f"{file}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
            ) from None
        if not isinstance(values, dict):
            raise WorldConfigError(
                f"{file}: expected a JSON object of WorldConfig fields "
                f"(got {type(values).__name__})"
            )
        return cls.from_dict(values, source=str(file))

    def to_json(self, path: str | Path) -> Path:
        """Write every field as JSON, so that the world can be rebuilt exactly."""
        file = Path(path)
        file.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return file


def _explain(exc: ValidationError, source: str) -> str:
    lines = [f"invalid world config in {source}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field, WorldConfig.model_fields, n=1)
            hint = f"did you mean `{close[0]}`?" if close else "see `recops world config`"
            lines.append(f"  - unknown field `{field}`: {hint}")
        elif not err["loc"]:
            lines.append(f"  - {err['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  - `{field}`: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)
