"""The multi-task two-tower model, the baselines and the artifact format."""

from recops.models.base import Queries, Recommender

__all__ = ["Queries", "Recommender"]
