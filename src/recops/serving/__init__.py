"""recops.serving."""
