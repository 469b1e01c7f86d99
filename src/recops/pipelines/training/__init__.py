"""recops' own training pipeline: ingest → validate → split → train → evaluate → publish."""

from recops.pipelines.training.config import ConfigError, TrainingConfig, load_config
from recops.pipelines.training.pipeline import train_and_evaluate, training_pipeline

__all__ = [
    "ConfigError",
    "TrainingConfig",
    "load_config",
    "train_and_evaluate",
    "training_pipeline",
]
