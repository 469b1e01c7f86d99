"""Kubeflow Pipelines v2: compile a traced pipeline to a pipeline spec, run a step in a container.

:func:`compile_kfp` turns each step of a :class:`~recops.pipelines.graph.Graph` into a
container component of the ``kfp`` SDK and wires them as the graph does; the
compiled YAML runs on Kubeflow Pipelines and Vertex AI Pipelines. Every component
runs, in the project's container image::

    recops pipeline step <module:qualname> --params '<JSON>' [--timeout-s S]
        [--input NAME PATH]... [--output NAME PATH]...

where the paths are KFP's artifact path expressions (``{{$.inputs.artifacts['x'].path}}``).
:func:`run_container_step` is that command's body: it reads each input folder with
its codec, calls the component, and writes each output folder in the artifact
format of :mod:`recops.pipelines.store` (an absent optional output is written as a
folder whose manifest says ``"none": true``).

Parameters are the values the pipeline was traced with (constants of the spec), so
compile with the config you mean to run. KFP does its own caching (by inputs and
component spec, on unless the component says ``cache=False``), retries
(``set_retry``) and resources (``cpus``, ``memory_gb``); the timeout is enforced by
the step command. :func:`~recops.pipelines.graph.previous` finds nothing when
compiling (there is no run store), so steps that compare with the last run see None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recops.pipelines.codecs import codec_for, dumps, unwrap_optional
from recops.pipelines.component import Component
from recops.pipelines.execution import call_with_timeout, store_outputs, typed_parameters
from recops.pipelines.graph import Graph, Step, StepOutput, load_object
from recops.pipelines.store import MANIFEST, read_artifact, write_artifact

#: KFP artifact types of recops' artifact kinds.
KFP_TYPES = {"dataset": "Dataset", "model": "Model", "metrics": "Metrics", "report": "Artifact"}


def _kfp() -> Any:
    try:
        import kfp
    except ImportError:
        raise RuntimeError("compiling for Kubeflow needs the kfp SDK: pip install kfp") from None
    return kfp


def _kfp_type(tp: Any) -> str:
    inner, _ = unwrap_optional(tp)
    return KFP_TYPES[codec_for(inner).kind(inner)]


def component_spec(step: Step, image: str) -> dict[str, Any]:
    """The KFP component spec (YAML document) of one step."""
    sig = step.component.signature()
    wired = [n for n, source in step.inputs.items() if isinstance(source, StepOutput)]
    args: list[Any] = ["--params", json.dumps(step.params, sort_keys=True)]
    timeout = step.component.options.timeout_s
    if timeout is not None:
        args += ["--timeout-s", f"{timeout:g}"]
    for name in wired:
        args += ["--input", name, {"inputPath": name}]
    for name in sig.outputs:
        args += ["--output", name, {"outputPath": name}]
    return {
        "name": step.name,
        "inputs": [{"name": n, "type": _kfp_type(sig.parameters[n])} for n in wired],
        "outputs": [{"name": n, "type": _kfp_type(tp)} for n, tp in sig.outputs.items()],
        "implementation": {
            "container": {
                "image": image,
                "command": ["recops", "pipeline", "step", step.component.ref],
                "args": args,
            }
        },
    }


def compile_kfp(graph: Graph, out: str | Path, image: str) -> Path:
    """Write the pipeline spec YAML of ``graph``, each step in container ``image``."""
    kfp = _kfp()
    from kfp import compiler, dsl
    from kfp.components import load_component_from_text

    if not image or any(c.isspace() for c in image):
        raise ValueError(f"`image` must be a container image name (got {image!r})")
    import yaml

    factories = {
        s.name: load_component_from_text(yaml.safe_dump(component_spec(s, image), sort_keys=False))
        for s in graph.steps
    }

    def body() -> None:
        tasks: dict[str, Any] = {}
        for step in graph.steps:
            wired = {
                name: tasks[source.step].outputs[source.name]
                for name, source in step.inputs.items()
                if isinstance(source, StepOutput)
            }
            task = factories[step.name](**wired)
            options = step.component.options
            task.set_display_name(step.name)
            task.set_caching_options(options.cache)
            if options.retries:
                task.set_retry(
                    num_retries=options.retries,
                    backoff_duration=f"{options.retry_delay_s:g}s",
                    backoff_factor=2.0,
                )
            task.set_cpu_limit(f"{options.cpus:g}")
            if options.memory_gb is not None:
                task.set_memory_limit(f"{options.memory_gb:g}G")
            tasks[step.name] = task

    body.__name__ = graph.pipeline.replace("-", "_")
    # kfp reads the return annotation as the pipeline's outputs; it has none.
    body.__annotations__ = {}
    compiled = dsl.pipeline(name=graph.pipeline, description=f"recops pipeline {graph.ref}")(body)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(compiled, str(target))
    del kfp
    return target


def _read_input(folder: Path, tp: Any) -> Any:
    manifest = json.loads((folder / MANIFEST).read_bytes()) if (folder / MANIFEST).is_file() else {}
    if manifest.get("none"):
        return None
    return read_artifact(folder, tp)


def run_container_step(
    ref: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    timeout_s: float | None = None,
) -> dict[str, str | None]:
    """Run component ``ref`` on input folders, writing output folders; returns the digests."""
    component = load_object(ref)
    if not isinstance(component, Component):
        raise ValueError(f"{ref} is not a @component")
    sig = component.signature()
    unknown = (set(inputs) | set(params)) - set(sig.parameters)
    if unknown:
        raise ValueError(f"{ref} has no parameter(s) {', '.join(sorted(unknown))}")
    missing = ", ".join(sorted(set(sig.outputs) - set(outputs)))
    if missing:
        raise ValueError(f"{ref}: say where to write output(s) {missing} (--output NAME PATH)")
    kwargs = typed_parameters(component, dict(params))
    for name, path in inputs.items():
        kwargs[name] = _read_input(Path(path), sig.parameters[name])
    result = call_with_timeout(lambda: component.fn(**kwargs), timeout_s, component.name)
    records = store_outputs(
        component,
        result,
        lambda name, value, tp: write_artifact(value, tp, Path(outputs[name]), outputs[name]),
    )
    for name, record in records.items():
        if record is None:
            folder = Path(outputs[name])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MANIFEST).write_bytes(dumps({"none": True, "digest": None}))
    return {n: None if r is None else r.digest for n, r in records.items()}
