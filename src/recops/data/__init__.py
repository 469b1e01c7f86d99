"""Schemas, dataset loaders and the built-in world generator."""

from recops.data.errors import DatasetNotFoundError, DataValidationError, Problem
from recops.data.loaders import BanditFeedback, load_dataset, load_obd_bandit_feedback
from recops.data.schema import Dataset
from recops.data.validation import (
    ValidationReport,
    validate_interactions,
    validate_items,
    validate_users,
)

__all__ = [
    "BanditFeedback",
    "DataValidationError",
    "Dataset",
    "DatasetNotFoundError",
    "Problem",
    "ValidationReport",
    "load_dataset",
    "load_obd_bandit_feedback",
    "validate_interactions",
    "validate_items",
    "validate_users",
]
