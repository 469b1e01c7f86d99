"""recops.evaluation."""
