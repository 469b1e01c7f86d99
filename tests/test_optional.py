"""Optional imports: the module when it is there, else a message naming the feature and install."""

from __future__ import annotations

import pytest

from recops.optional import import_ray


def test_a_missing_part_names_the_feature_and_the_install() -> None:
    with pytest.raises(RuntimeError, match=r"batch jobs needs Ray: pip install 'ray\[data\]'"):
        import_ray("no_such_part", needed_by="batch jobs", install="ray[data]")


def test_the_module_with_its_parts() -> None:
    pytest.importorskip("ray", reason="Ray is not installed")
    ray = import_ray("data", needed_by="a test")
    assert hasattr(ray, "data")
