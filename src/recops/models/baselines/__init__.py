"""Baselines every model in recops is compared with, all on the ``Recommender`` contract.

``MostPopular``, ``RecentPopular``, ``ItemKNN``, ``EASE``, ``ALS`` and ``BPR`` score
user queries; ``CategoryPopular`` (category→item) and ``BM25Search`` (query→item)
are the baselines of the other recommendation tasks.
"""

from recops.models.baselines.bm25 import BM25Search
from recops.models.baselines.ease import EASE
from recops.models.baselines.implicit_mf import ALS, BPR
from recops.models.baselines.itemknn import ItemKNN
from recops.models.baselines.popularity import CategoryPopular, MostPopular, RecentPopular

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "BM25Search",
    "CategoryPopular",
    "ItemKNN",
    "MostPopular",
    "RecentPopular",
]
