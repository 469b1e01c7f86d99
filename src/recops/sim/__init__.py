"""recops.sim."""
