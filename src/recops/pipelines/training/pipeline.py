"""recops' training pipeline, wired from its components.

::

    ingest ─► validate ─► split ─► train ─┬─► evaluate_models (◄─ champion) ─────┐
                 ▲                        ├─► off_policy (◄─ exposures) ─────────┤ outputs
       last run's stats                   └─► publish ─► <repo>/<name>/<version> ┘

``validate`` compares the data with the last successful run's statistics
(:func:`~recops.pipelines.previous`); ``off_policy`` runs when an event log with
exposures is configured.

:func:`train_and_evaluate` wires everything before ``publish`` and returns the typed
outputs (``ingested``, ``data``, ``data_report``, ``model``, ``offline``, and
``ope``); a pipeline with register, gate and deploy steps calls it and adds its own
steps on those outputs, the way :func:`training_pipeline` adds ``publish``, and may
pass the step that finds the champion (``recops.registry.pipeline`` passes the
registry's ``champion`` alias instead of the repository's latest version).
"""

from __future__ import annotations

from collections.abc import Callable

from recops.pipelines.graph import StepOutput, pipeline, previous
from recops.pipelines.training.config import TrainingConfig
from recops.pipelines.training.evaluate import champion, evaluate_models
from recops.pipelines.training.ingest import ingest
from recops.pipelines.training.ope import exposures, off_policy
from recops.pipelines.training.publish import publish
from recops.pipelines.training.split import split
from recops.pipelines.training.train import train
from recops.pipelines.training.validate import validate


def train_and_evaluate(
    config: TrainingConfig, champion_step: Callable[[], StepOutput] | None = None
) -> dict[str, StepOutput]:
    """The steps from ``ingest`` to ``off_policy``, called inside a pipeline being traced.

    ``champion_step`` adds the step whose output is the champion to compare with
    (default: ``champion``, the latest version in the model repository).
    """
    data = ingest(config.source)
    checked = validate(data, previous("validate", "stats"), config.checks, config.split.events)
    parts = split(checked.data, config.split)
    model = train(parts, config.model)
    if champion_step is None:
        current = champion(config.publish.repository, config.publish.name)
    else:
        current = champion_step()
    outputs = {
        "ingested": data,
        "data": checked.data,
        "data_report": checked.report,
        "model": model,
        "offline": evaluate_models(parts, model, current, config.evaluate),
    }
    event_log = config.exposure_log()
    if event_log is not None:
        logged = exposures(event_log, config.ope.max_requests)
        outputs["ope"] = off_policy(model, logged, checked.data, config.ope, config.split.events)
    return outputs


@pipeline(name="train")
def training_pipeline(config: TrainingConfig) -> dict[str, StepOutput]:
    """Ingest, validate, split, train, evaluate (offline and off-policy), publish."""
    outputs = train_and_evaluate(config)
    target = config.publish
    outputs["version"] = publish(outputs["model"], outputs["data"], target.repository, target.name)
    return outputs
