"""The reply models' own encoders agree with pydantic's serializer."""

from __future__ import annotations

import math

import pytest

from recops.serving.schemas import Recommendations


@pytest.mark.parametrize(
    "fields",
    [
        {"items": ["i1", "é"], "scores": [1.5, -0.1234567890123], "strategy": "personalized"},
        {"items": [], "scores": [], "strategy": "cold_start", "request_id": "ab-1"},
        {
            "items": ["x"],
            "scores": [-math.inf],  # an item that does not exist yet at `now`
            "strategy": "search",
            "experiment": "e",
            "variant": "holdout",
        },
    ],
)
def test_to_json_is_model_dump_json(fields: dict[str, object]) -> None:
    reply = Recommendations.model_construct(model="news", version="1", **fields)
    assert reply.to_json().decode() == reply.model_dump_json()
