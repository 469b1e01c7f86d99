"""The deploy files' tests: what can be checked offline, without Docker, Terraform or GitHub."""

from __future__ import annotations

from pathlib import Path

from tests.serving.conftest import trained_artifact

__all__ = ["ROOT", "trained_artifact"]

#: The repository root, where the Dockerfile, compose.yaml and deploy/ live.
ROOT = Path(__file__).resolve().parents[2]
