"""The multi-task two-tower recommender: user, item, query, category and similar-item towers."""

from recops.models.two_tower.config import TwoTowerConfig
from recops.models.two_tower.model import TwoTower

__all__ = ["TwoTower", "TwoTowerConfig"]
