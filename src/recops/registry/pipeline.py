"""The gated training pipeline: train, evaluate against the champion, register, gate, deploy.

::

    ingest ─► validate ─► split ─► train ─┬─► evaluate_models (◄─ champion: the registry's alias)
                                          ├─► off_policy (◄─ exposures)
                                          └─► publish ─► track ─► register ─► gate ─► deploy

It is :func:`~recops.pipelines.training.train_and_evaluate` with the champion taken
from the registry (``registry_champion``), then ``publish`` (a servable version of
the model repository) and the registry's steps (:mod:`recops.registry.steps`):
the run is tracked in MLflow, the model registered, judged by the gate's rules, and
``challenger`` moved to it when it passed. ``recops pipeline run train`` runs this
pipeline; its config is a :class:`~recops.registry.config.GatedTrainingConfig`.
"""

from __future__ import annotations

from recops.pipelines.graph import StepOutput, pipeline
from recops.pipelines.training.pipeline import train_and_evaluate
from recops.pipelines.training.publish import publish
from recops.registry.config import GatedTrainingConfig
from recops.registry.steps import deploy, gate, register, registry_champion, track


@pipeline(name="train")
def gated_training_pipeline(config: GatedTrainingConfig) -> dict[str, StepOutput]:
    """Ingest, validate, split, train, evaluate, publish, track, register, gate, deploy."""
    target = config.publish
    outputs = train_and_evaluate(
        config, lambda: registry_champion(config.registry, target.repository, target.name)
    )
    ope = outputs.get("ope")
    published = publish(outputs["model"], outputs["data"], target.repository, target.name)
    run = track(
        config, outputs["ingested"], outputs["data_report"], outputs["offline"], ope, published
    )
    registered = register(run, published, config.registry)
    verdict = gate(
        registered, run, outputs["offline"], outputs["data_report"], ope, config.gate,
        config.registry,
    )  # fmt: skip
    deployed = deploy(registered, verdict, run, config.registry)
    return {
        **outputs,
        "version": published,
        "run": run,
        "registered": registered,
        "gate": verdict,
        "deployed": deployed,
    }
