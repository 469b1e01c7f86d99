"""Step-level caching: hits, and misses on a code, parameter or input change."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from recops.pipelines import LocalExecutor
from recops.pipelines.code import code_hash
from tests.pipelines import components as toy

MODULE = '''
"""A pipeline whose code the test edits."""

import pandas as pd

from recops.pipelines import component, pipeline

FACTOR = {factor}


def helper(frame):
    return frame["x"] * {helper}


@component
def derive(n: int) -> pd.DataFrame:
    """Docstring {doc}."""
    # a comment {doc}
    unused = {extra}  # noqa: F841
    return pd.DataFrame({{"x": range(n)}}).assign(y=lambda f: helper(f) * FACTOR)


@component
def count(frame: pd.DataFrame) -> dict[str, int]:
    return {{"rows": len(frame)}}


@pipeline
def edited(n: int) -> None:
    count(derive(n))
'''


def statuses(result) -> dict[str, str]:
    return {s.name: s.status for s in result.record.steps}


def test_a_second_run_is_all_cached_and_cache_can_be_ignored(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    first = executor.run(toy.toy, n=10, log_dir=str(tmp_path))
    assert set(statuses(first).values()) == {"succeeded"}
    second = executor.run(toy.toy, n=10, log_dir=str(tmp_path))
    assert set(statuses(second).values()) == {"cached"}
    assert {s.cached_from for s in second.record.steps} == {first.run_id}
    assert second.record.outputs == first.record.outputs
    assert toy.calls(tmp_path, "make") == 1
    fresh = LocalExecutor(executor.store, executor.runs, cache=False)
    again = fresh.run(toy.toy, n=10, log_dir=str(tmp_path))
    assert set(statuses(again).values()) == {"succeeded"}
    assert again.record.outputs == first.record.outputs  # same content, same digests


def test_a_parameter_change_misses_that_step_only(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.run(toy.toy, n=10, log_dir=str(tmp_path))
    scaled = executor.run(toy.toy, n=10, log_dir=str(tmp_path), scale=2.0)
    assert statuses(scaled) == {
        "make": "cached",
        "halve": "cached",
        "total": "succeeded",
        "total-2": "cached",
    }


def test_an_input_change_misses_downstream(executor: LocalExecutor, tmp_path: Path) -> None:
    executor.run(toy.toy, n=10, log_dir=str(tmp_path))
    bigger = executor.run(toy.toy, n=12, log_dir=str(tmp_path))
    assert set(statuses(bigger).values()) == {"succeeded"}


@pytest.fixture
def edited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    path = folder / "recops_edited_pipeline.py"

    def write(factor: int = 2, helper: int = 1, doc: str = "v1", extra: int = 0):
        source = MODULE.format(factor=factor, helper=helper, doc=doc, extra=extra)
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        if "recops_edited_pipeline" in sys.modules:
            return importlib.reload(sys.modules["recops_edited_pipeline"])
        return importlib.import_module("recops_edited_pipeline")

    yield write
    sys.modules.pop("recops_edited_pipeline", None)


def test_code_changes_miss_and_comments_or_docstrings_do_not(
    executor: LocalExecutor, edited
) -> None:
    module = edited()
    base = code_hash(module.derive.fn)
    assert statuses(executor.run(module.edited, n=5)) == {
        "derive": "succeeded",
        "count": "succeeded",
    }
    module = edited(doc="v2: reworded")
    assert code_hash(module.derive.fn) == base
    assert statuses(executor.run(module.edited, n=5))["derive"] == "cached"
    # A changed module constant or helper the component uses: a miss, and a new frame.
    for change in ({"factor": 3}, {"helper": 5}):
        module = edited(**change)
        assert code_hash(module.derive.fn) != base
        # The new frame has a new digest, so the step reading it misses too.
        assert set(statuses(executor.run(module.edited, n=5)).values()) == {"succeeded"}


def test_rerun_code_with_equal_output_lets_downstream_hit(executor: LocalExecutor, edited) -> None:
    module = edited()
    executor.run(module.edited, n=5)
    module = edited(extra=1)
    assert statuses(executor.run(module.edited, n=5)) == {"derive": "succeeded", "count": "cached"}


def test_code_deps_hash_the_source_of_the_modules_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "recops_dep_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text("WEIGHT = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()

    def fn() -> int:
        return 1

    before = code_hash(fn, code_deps=("recops_dep_package",))
    assert code_hash(fn) != before
    (package / "core.py").write_text("WEIGHT = 2\n")
    assert code_hash(fn, code_deps=("recops_dep_package",)) != before
    assert code_hash(fn, version="2") != code_hash(fn)
    sys.modules.pop("recops_dep_package", None)
