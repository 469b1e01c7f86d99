"""recops' own training pipeline: ingest → validate → split → train → evaluate → publish."""

from recops.pipelines.training.config import ConfigError, TrainingConfig, load_config
from recops.pipelines.training.pipeline import training_pipeline

__all__ = ["ConfigError", "TrainingConfig", "load_config", "training_pipeline"]
