"""Loaders that turn public datasets and a user's own files into a recops ``Dataset``."""

from recops.data.loaders.mind import load_mind
from recops.data.loaders.movielens import load_movielens_100k, load_movielens_latest_small
from recops.data.loaders.obd import BanditFeedback, load_obd, load_obd_bandit_feedback
from recops.data.loaders.registry import LOADERS, load_dataset
from recops.data.loaders.tabular import (
    load_tabular,
    parse_column_map,
    read_catalog,
    read_interactions,
    read_users,
)

__all__ = [
    "LOADERS",
    "BanditFeedback",
    "load_dataset",
    "load_mind",
    "load_movielens_100k",
    "load_movielens_latest_small",
    "load_obd",
    "load_obd_bandit_feedback",
    "load_tabular",
    "parse_column_map",
    "read_catalog",
    "read_interactions",
    "read_users",
]
