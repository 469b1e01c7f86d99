"""recops.experiments."""
