"""recops: MLOps for real-time recommendation."""

__version__ = "0.1.0"
