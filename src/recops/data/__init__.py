"""Schemas, dataset loaders and the built-in world generator."""

from recops.data.schema import Dataset

__all__ = ["Dataset"]
