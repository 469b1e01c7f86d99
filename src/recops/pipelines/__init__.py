"""Pipelines as plain Python functions: components, artifacts, executors, compilers."""

from recops.pipelines.artifacts import ArtifactRecord, ArtifactRef, Metrics, Report
from recops.pipelines.component import Component, ComponentOptions, component
from recops.pipelines.executor import Executor, LocalExecutor, PipelineError, RunResult
from recops.pipelines.graph import Graph, Pipeline, Step, StepOutput, pipeline, previous
from recops.pipelines.runstore import Lineage, RunRecord, RunStore, StepRecord
from recops.pipelines.store import ArtifactStore

__all__ = [
    "ArtifactRecord",
    "ArtifactRef",
    "ArtifactStore",
    "Component",
    "ComponentOptions",
    "Executor",
    "Graph",
    "Lineage",
    "LocalExecutor",
    "Metrics",
    "Pipeline",
    "PipelineError",
    "Report",
    "RunRecord",
    "RunResult",
    "RunStore",
    "Step",
    "StepOutput",
    "StepRecord",
    "component",
    "pipeline",
    "previous",
]
