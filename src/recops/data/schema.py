"""The one schema every dataset, loader, model and server in recops speaks.

Three tables, stored as Parquet:

* **items** (the catalog): ``item_id`` (str), ``title`` (str), ``categories``
  (list of str), ``publish_time`` (int64 unix seconds, nullable), plus any extra
  feature columns.
* **users**: ``user_id`` (str), plus any extra feature columns.
* **interactions** (events): ``user_id`` (str), ``item_id`` (str), ``event``
  (str: ``impression``, ``click``, ``rating``, ...), ``value`` (float), ``timestamp``
  (int64 unix seconds, UTC), plus any optional context columns (``position``,
  ``propensity``, ...), which are carried along untouched.

Ids are strings everywhere so that a MovieLens integer id, a MIND ``N12345`` and a
shop's SKU need no special cases downstream. Timestamps are integer seconds because
every model does arithmetic on them (item age, recency) and Parquet stores them
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

USER_ID = "user_id"
ITEM_ID = "item_id"
EVENT = "event"
VALUE = "value"
TIMESTAMP = "timestamp"
TITLE = "title"
CATEGORIES = "categories"
PUBLISH_TIME = "publish_time"

INTERACTION_COLUMNS: tuple[str, ...] = (USER_ID, ITEM_ID, EVENT, VALUE, TIMESTAMP)
ITEM_COLUMNS: tuple[str, ...] = (ITEM_ID, TITLE, CATEGORIES, PUBLISH_TIME)
USER_COLUMNS: tuple[str, ...] = (USER_ID,)

#: An item shown to a user, clicked or not (a server logs one per item of a slate).
IMPRESSION = "impression"
EVENT_TYPES: frozenset[str] = frozenset(
    {IMPRESSION, "click", "rating", "view", "purchase", "add_to_cart", "like", "skip"}
)


def empty_items() -> pd.DataFrame:
    """A catalog with no rows but the right columns and dtypes."""
    return pd.DataFrame(
        {
            ITEM_ID: pd.Series([], dtype=object),
            TITLE: pd.Series([], dtype=object),
            CATEGORIES: pd.Series([], dtype=object),
            PUBLISH_TIME: pd.Series([], dtype="Int64"),
        }
    )


def empty_users() -> pd.DataFrame:
    """A users table with no rows but the right columns."""
    return pd.DataFrame({USER_ID: pd.Series([], dtype=object)})


@dataclass
class Dataset:
    """Interactions plus (optionally) the catalog and the users they refer to.

    Parameters
    ----------
    interactions:
        Events in the interaction schema, sorted by timestamp.
    items:
        The catalog; may be empty when only interactions are known.
    users:
        User features; may be empty.
    name:
        A short name used in reports and file names.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame = field(default_factory=empty_items)
    users: pd.DataFrame = field(default_factory=empty_users)
    name: str = "dataset"

    def save(self, directory: str | Path) -> Path:
        """Write the three tables as Parquet files into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.interactions.to_parquet(out / "interactions.parquet", index=False)
        self.items.to_parquet(out / "items.parquet", index=False)
        self.users.to_parquet(out / "users.parquet", index=False)
        return out

    @classmethod
    def load(cls, directory: str | Path, name: str | None = None) -> Dataset:
        """Read a dataset written by :meth:`save`."""
        src = Path(directory)
        missing = [f for f in ("interactions.parquet", "items.parquet") if not (src / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{src} is not a recops dataset: missing {', '.join(missing)}")
        users_path = src / "users.parquet"
        items = pd.read_parquet(src / "items.parquet")
        if CATEGORIES in items:
            items[CATEGORIES] = items[CATEGORIES].map(list)
        return cls(
            interactions=pd.read_parquet(src / "interactions.parquet"),
            items=items,
            users=pd.read_parquet(users_path) if users_path.is_file() else empty_users(),
            name=name or src.name,
        )
