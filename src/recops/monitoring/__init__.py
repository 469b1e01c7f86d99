"""Monitoring: feature and prediction drift, online metrics, alerts (see the submodules)."""
