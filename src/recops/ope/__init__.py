"""recops.ope."""
