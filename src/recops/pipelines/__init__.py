"""Pipelines as plain Python functions: components, typed artifacts, executors, compilers.

>>> import pandas as pd
>>> from recops.pipelines import LocalExecutor, component, pipeline
>>> @component
... def clicks(n: int) -> pd.DataFrame:
...     return pd.DataFrame({"item_id": [f"i{k}" for k in range(n)]})
>>> @component
... def count(events: pd.DataFrame) -> dict[str, int]:
...     return {"rows": len(events)}
>>> @pipeline
... def daily(n: int = 3) -> None:
...     count(clicks(n))

``daily()`` runs as plain Python; ``LocalExecutor().run(daily, n=3)`` runs it with a
content-addressed artifact store, step caching, retries, timeouts and lineage in the
run store; ``RayExecutor`` runs the steps as Ray tasks; ``compile_kfp`` writes a
Kubeflow Pipelines v2 spec. recops' own training pipeline is
:data:`recops.pipelines.training.training_pipeline`.

Modules: ``component`` (``@component``), ``graph`` (``@pipeline``, tracing,
``previous``), ``code`` (code identity), ``codecs`` and ``store`` (artifacts),
``runstore`` (runs, lineage, cache), ``execution`` (one step's body, retries,
timeouts), ``executor`` (bookkeeping, local executor), ``ray_executor``,
``kubeflow``, ``progress``, ``settings``, ``training``.
"""

from recops.pipelines.artifacts import ArtifactRecord, ArtifactRef, Metrics, Report
from recops.pipelines.codecs import Codec, register_codec
from recops.pipelines.component import Component, ComponentOptions, component
from recops.pipelines.execution import StepError, StepTimeout
from recops.pipelines.executor import Executor, LocalExecutor, PipelineError, RunResult
from recops.pipelines.graph import Graph, Pipeline, Step, StepOutput, pipeline, previous
from recops.pipelines.kubeflow import compile_kfp
from recops.pipelines.ray_executor import RayExecutor
from recops.pipelines.runstore import Lineage, RunRecord, RunStore, StepRecord
from recops.pipelines.store import ArtifactNotFoundError, ArtifactStore

__all__ = [
    "ArtifactNotFoundError",
    "ArtifactRecord",
    "ArtifactRef",
    "ArtifactStore",
    "Codec",
    "Component",
    "ComponentOptions",
    "Executor",
    "Graph",
    "Lineage",
    "LocalExecutor",
    "Metrics",
    "Pipeline",
    "PipelineError",
    "RayExecutor",
    "Report",
    "RunRecord",
    "RunResult",
    "RunStore",
    "Step",
    "StepError",
    "StepOutput",
    "StepRecord",
    "StepTimeout",
    "compile_kfp",
    "component",
    "pipeline",
    "previous",
    "register_codec",
]
