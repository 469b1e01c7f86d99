"""The local executor: retries, timeouts, resume, lineage, logs, tracing errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from recops.pipelines import ArtifactRef, LocalExecutor, PipelineError, component, pipeline
from recops.pipelines.execution import StepTimeout
from recops.pipelines.runstore import RunNotFoundError
from tests.pipelines import components as toy


def statuses(record) -> dict[str, str]:
    return {s.name: s.status for s in record.steps}


def test_a_pipeline_called_outside_an_executor_is_plain_python(tmp_path: Path) -> None:
    out = toy.toy(n=4, log_dir=str(tmp_path))
    assert isinstance(out["head"], toy.Stats)
    assert out["head"].total == 0 + 1 and out["tail"].total == 4 + 9


def test_retries_until_success_and_fail_when_spent(executor: LocalExecutor, tmp_path: Path) -> None:
    ok = executor.run(toy.toy_with_flaky, n=4, log_dir=str(tmp_path), failures=2, retries=2)
    step = ok.record.step("flaky")
    assert step.status == "succeeded" and step.attempts == 3
    assert step.log is not None and step.log.count("ConnectionError: simulated outage") == 2
    with pytest.raises(PipelineError, match="after 2 attempt") as failed:
        executor.run(toy.toy_with_flaky, n=4, log_dir=str(tmp_path / "x"), failures=5, retries=1)
    record = executor.runs.get_run(failed.value.run_id)
    assert record.status == "failed" and record.step("flaky").status == "failed"
    assert record.step("flaky").error == "ConnectionError: simulated outage"


def test_an_error_outside_retry_on_is_not_retried(executor: LocalExecutor, tmp_path: Path) -> None:
    @pipeline
    def narrow() -> None:
        toy.flaky.with_options(retries=3, retry_on=(KeyError,), retry_delay_s=0.0)(
            toy.total(toy.make(2, str(tmp_path)), str(tmp_path)), str(tmp_path), failures=1
        )

    with pytest.raises(PipelineError) as failed:
        executor.run(narrow)
    assert executor.runs.get_run(failed.value.run_id).step("flaky").attempts == 1


def test_a_step_past_its_timeout_fails(executor: LocalExecutor) -> None:
    started = time.perf_counter()
    with pytest.raises(PipelineError, match=r"timeout of 0\.3 s") as failed:
        executor.run(toy.toy_slow, seconds=5.0, timeout_s=0.3)
    assert time.perf_counter() - started < 3
    assert isinstance(failed.value.__cause__, StepTimeout)
    assert executor.runs.get_run(failed.value.run_id).step("sleeper").status == "failed"


def test_resume_runs_the_failed_step_and_after_only(
    executor: LocalExecutor, tmp_path: Path
) -> None:
    log_dir = str(tmp_path)
    with pytest.raises(PipelineError) as failed:
        executor.run(toy.toy_breaking, n=6, log_dir=log_dir)
    run_id = failed.value.run_id
    record = executor.runs.get_run(run_id)
    assert statuses(record) == {
        "make": "succeeded",
        "total": "succeeded",
        "breaks_unless": "failed",
        "make-2": "skipped",
        "after": "skipped",
    }
    with pytest.raises(ValueError, match="nothing to resume"):
        other = executor.run(toy.toy, n=2, log_dir=str(tmp_path / "other")).run_id
        executor.resume(other)
    (tmp_path / "fixed").write_text("yes")
    # A unique prefix is enough: one character past what the two ids share (both runs may
    # have started in the same second, so a fixed length could be ambiguous).
    shared = next(i for i, (a, b) in enumerate(zip(run_id, other, strict=True)) if a != b)
    with pytest.raises(RunNotFoundError, match="2 runs"):
        executor.resume(run_id[:shared])
    resumed = executor.resume(run_id[: shared + 1])
    assert resumed.run_id == run_id and resumed.record.attempts == 2
    assert statuses(resumed.record) == {
        "make": "succeeded",
        "total": "succeeded",
        "breaks_unless": "succeeded",
        "make-2": "succeeded",
        "after": "succeeded",
    }
    assert toy.calls(tmp_path, "breaks_unless") == 2
    # Steps that had succeeded were not run again: make, make-2, total, after once each.
    assert toy.calls(tmp_path, "make") == 2 and toy.calls(tmp_path, "total") == 2


def test_lineage_names_inputs_code_and_parameters(executor: LocalExecutor, tmp_path: Path) -> None:
    result = executor.run(toy.toy, n=6, log_dir=str(tmp_path), scale=3.0)
    head = result.record.outputs["head"]
    assert head is not None
    lineage = executor.runs.lineage(head)
    assert lineage.artifact is not None and lineage.artifact.kind == "metrics"
    producer = lineage.producer
    assert producer is not None and producer.name == "total" and producer.run_id == result.run_id
    assert producer.params == {"log_dir": str(tmp_path), "scale": 3.0}
    assert producer.code_hash == toy.total.code_hash()
    halve = result.record.step("halve")
    assert producer.inputs == {"frame": halve.outputs["head"]}
    frame_lineage = executor.runs.lineage(halve.outputs["head"])
    assert frame_lineage.consumers == ((result.run_id, "total", "frame"),)
    assert result.value("total") == toy.Stats(total=(0 + 1 + 4) * 3.0, rows=3)
    # A cached rerun reads the same artifact: one more consumer, same producer.
    again = executor.run(toy.toy, n=6, log_dir=str(tmp_path), scale=3.0)
    assert executor.runs.lineage(head).producer == producer
    assert again.record.step("total").cached_from == result.run_id
    assert result.record.step("make").log == "making 6 rows\n"


def test_previous_finds_the_last_successful_run(executor: LocalExecutor, tmp_path: Path) -> None:
    first = executor.run(toy.toy_history, n=4, log_dir=str(tmp_path))
    assert first.value("compare") == {"change": None}
    second = executor.run(toy.toy_history, n=5, log_dir=str(tmp_path))
    assert second.value("compare") == {"change": 16.0}
    baseline = second.record.step("compare").inputs["baseline"]
    assert baseline == first.record.step("total").outputs["output"]


def test_tracing_refuses_what_cannot_be_stored() -> None:
    @component
    def takes(frame: pd.DataFrame, scale: float) -> pd.DataFrame:
        return frame * scale  # never runs: tracing refuses the calls

    @pipeline
    def nested() -> None:
        frame = toy.make(2, "x")
        takes(frame, [frame])  # an artifact inside a list

    with pytest.raises(TypeError, match="argument of its own"):
        nested.trace()

    @pipeline
    def wrong_param() -> None:
        takes(toy.make(2, "x"), object())

    with pytest.raises(TypeError, match="JSON values"):
        wrong_param.trace()

    with pytest.raises(TypeError, match="has no parameter"):
        wrong_param.trace({"surprise": 1})


def test_an_input_artifact_missing_from_the_store_fails_its_step(executor: LocalExecutor) -> None:
    @component
    def scale(frame: pd.DataFrame, by: float) -> pd.DataFrame:
        return frame * by

    @pipeline
    def from_elsewhere() -> None:
        scale(ArtifactRef("0" * 64, origin="a deleted run"), 2.0)

    with pytest.raises(PipelineError, match="a deleted run"):
        executor.run(from_elsewhere)


def test_timeouts_outside_the_main_thread_abandon_the_step() -> None:
    from recops.pipelines.execution import call_with_timeout

    caught: list[BaseException] = []

    def target() -> None:
        try:
            call_with_timeout(lambda: time.sleep(3), 0.2, "slow")
        except StepTimeout as err:
            caught.append(err)

    worker = threading.Thread(target=target)
    started = time.perf_counter()
    worker.start()
    worker.join(5)
    assert len(caught) == 1 and time.perf_counter() - started < 2
    assert call_with_timeout(lambda: 7, 1.0, "quick") == 7
