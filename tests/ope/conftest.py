"""The obp script is run by hand in its own virtual environment (obp is not a dependency)."""

collect_ignore = ["reference/make_obp_vectors.py"]
