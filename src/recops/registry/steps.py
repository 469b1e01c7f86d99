"""The registry's pipeline steps: ``champion``, ``track``, ``register``, ``gate``, ``deploy``.

``registry_champion`` gives the version the ``champion`` alias points at (made a
folder of the model repository if needed), so the new model is evaluated against
what a following server serves. ``track`` logs the pipeline run in MLflow
(:mod:`recops.registry.tracking`); ``register`` logs the published model directory
to that run and registers it (idempotent by model digest: the same model is one
version); ``gate`` runs the smoke test and the rules (:mod:`recops.registry.gates`)
and stores the verdict with the version; ``deploy`` points ``challenger`` at the
version when the gate passed. No step ever moves ``champion``: the
continuous-training controller promotes after an online test.

Every step but ``registry_champion`` talks to the registry, whose state changes
outside the pipeline, so they are never cached; ``registry_champion`` is cached by
the alias's version and the model digest it points at (its fingerprint).
"""

from __future__ import annotations

from pathlib import Path

from recops.data.schema import Dataset
from recops.models.two_tower import TwoTower
from recops.pipelines.artifacts import Report
from recops.pipelines.code import code_version
from recops.pipelines.component import component
from recops.pipelines.training.evaluate import Champion, OfflineEvaluation
from recops.pipelines.training.ope import OffPolicyEvaluation
from recops.pipelines.training.publish import ModelVersion
from recops.pipelines.training.validate import DataReport
from recops.registry.client import CHALLENGER, Registry
from recops.registry.config import GatedTrainingConfig
from recops.registry.gates import Evidence, GateConfig, GateResult, evaluate_gate
from recops.registry.materialise import materialise_version
from recops.registry.settings import RegistryConfig
from recops.registry.smoke import smoke_test
from recops.registry.tracking import TrackedRun, flatten, metric_key, report_metrics, track_run
from recops.registry.versions import (
    MODEL_PATH,
    TAG_DATA_VERSION,
    TAG_DIGEST,
    TAG_GATE,
    TAG_GATE_RESULT,
    TAG_GATE_RULE,
    TAG_REPOSITORY_VERSION,
)


class Registration(Report):
    """A published model as a registered version."""

    model: str
    version: str
    run_id: str
    repository: str
    repository_version: str
    model_digest: str
    new: bool


class Deployment(Report):
    """What ``deploy`` did with the ``challenger`` alias."""

    model: str
    alias: str
    version: str
    moved: bool
    previous: str | None
    message: str


def champion_fingerprint(registry: RegistryConfig, repository: str, name: str) -> str:
    """The version ``champion`` points at and its model digest (a moved alias: a cache miss)."""
    found = Registry.from_config(registry).champion(name)
    return "none" if found is None else f"{found.version}:{found.model_digest}"


@component(
    name="champion",
    fingerprint=champion_fingerprint,
    code_deps=("recops.models.two_tower", "recops.registry.materialise", "recops.serving.storage"),
)
def registry_champion(registry: RegistryConfig, repository: str, name: str) -> Champion | None:
    """The registry's champion as a repository version, loaded; None when there is none."""
    client = Registry.from_config(registry)
    found = client.champion(name)
    if found is None:
        return None
    folder = materialise_version(client, found, repository)
    from recops.serving.repository import ModelRepository

    path = ModelRepository(repository).path(name, folder)
    return Champion(TwoTower.load(path), name, folder)


def _data_version(data: Dataset) -> str:
    """The digest the pipeline store gives this dataset (its artifact address)."""
    import tempfile

    from recops.pipelines.store import write_artifact

    with tempfile.TemporaryDirectory(prefix="recops-data-version-") as tmp:
        return write_artifact(data, Dataset, Path(tmp) / "data", "").digest


@component(cache=False, code_deps=("recops.registry.tracking",))
def track(
    config: GatedTrainingConfig,
    ingested: Dataset,
    data_report: DataReport,
    offline: OfflineEvaluation,
    ope: OffPolicyEvaluation | None,
    published: ModelVersion,
) -> TrackedRun:
    """Log this pipeline run in MLflow: config, metrics, reports, data version."""
    metrics = {
        **report_metrics("offline.candidate", offline.candidate.model_dump(mode="json")),
        **report_metrics("data.check", {c.name: c.value for c in data_report.checks}),
    }
    if offline.champion is not None:
        metrics.update(report_metrics("offline.champion", offline.champion.model_dump(mode="json")))
    if offline.difference is not None:
        metrics.update(
            report_metrics(
                "offline.difference", {k: v.model_dump() for k, v in offline.difference.items()}
            )
        )
    reports = {
        "config": config.model_dump(mode="json"),
        "data_report": data_report.model_dump(mode="json"),
        "offline": offline.model_dump(mode="json"),
        "publish": published.model_dump(mode="json"),
    }
    if ope is not None:
        reports["ope"] = ope.model_dump(mode="json")
        metrics[metric_key("ope", "logged_ctr")] = (
            ope.logged_ctr if ope.logged_ctr is not None else float("nan")
        )
        for estimate in ope.estimates:
            for field in ("value", "ci_low", "ci_high", "ess"):
                metrics[metric_key("ope", estimate.estimator, field)] = getattr(estimate, field)
    code = code_version()
    tags = {
        "recops.pipeline": "train",
        TAG_DIGEST: published.model_digest,
        "recops.model": published.name,
        "recops.repository_version": published.version,
        "recops.code": str(code.get("git") or code.get("recops")),
    }
    return track_run(
        Registry.from_config(config.registry),
        config.registry.experiment,
        f"{published.name}-{published.version}",
        flatten(config.model_dump(mode="json")),
        metrics,
        reports,
        tags,
        _data_version(ingested),
    )


@component(cache=False, code_deps=("recops.registry.client",))
def register(run: TrackedRun, published: ModelVersion, registry: RegistryConfig) -> Registration:
    """Register the published model directory (the version holding it when it is known)."""
    client = Registry.from_config(registry)
    found = client.find_digest(published.name, published.model_digest)
    new = found is None
    if found is None:
        client.client.log_artifacts(run.run_id, published.path, MODEL_PATH)
        tags = {TAG_DIGEST: published.model_digest, TAG_REPOSITORY_VERSION: published.version}
        if run.data_version is not None:
            tags[TAG_DATA_VERSION] = run.data_version
        found = client.register(published.name, run.run_id, tags)
    client.client.set_tag(run.run_id, "recops.registered_version", found.version)
    return Registration(
        model=found.name,
        version=found.version,
        run_id=found.run_id or run.run_id,
        repository=published.repository,
        repository_version=published.version,
        model_digest=published.model_digest,
        new=new,
    )


def record_gate(client: Registry, result: GateResult, run_id: str) -> None:
    """Store a verdict with its version (tags) and with the pipeline run (``reports/gate.json``)."""
    verdict = "passed" if result.passed else "failed"
    tags = {TAG_GATE: verdict, TAG_GATE_RESULT: result.model_dump_json()}
    for outcome in result.outcomes:
        tags[TAG_GATE_RULE + metric_key(outcome.rule)] = f"{outcome.status}: {outcome.message}"
    client.set_tags(result.model, result.version, tags)
    client.client.set_tag(run_id, TAG_GATE, verdict)
    client.client.log_metric(run_id, "gate.passed", float(result.passed))
    client.log_json(run_id, "reports/gate.json", result.model_dump(mode="json"))


@component(cache=False, code_deps=("recops.registry.gates", "recops.registry.smoke"))
def gate(
    registered: Registration,
    run: TrackedRun,
    offline: OfflineEvaluation,
    data_report: DataReport,
    ope: OffPolicyEvaluation | None,
    rules: GateConfig,
    registry: RegistryConfig,
) -> GateResult:
    """Judge the version by the rules; its verdict and reasons go to MLflow."""
    k = rules.smoke_k()
    smoke = None
    if k is not None:
        smoke = smoke_test(
            registered.repository, registered.model, registered.repository_version, k
        )
    evidence = Evidence(registered.model, offline, data_report, ope, smoke)
    result = evaluate_gate(rules, evidence, registered.version, registered.repository_version)
    record_gate(Registry.from_config(registry), result, run.run_id)
    return result


@component(cache=False, code_deps=("recops.registry.client",))
def deploy(
    registered: Registration, verdict: GateResult, run: TrackedRun, registry: RegistryConfig
) -> Deployment:
    """Point ``challenger`` at the version when its gate passed (never ``champion``)."""
    client = Registry.from_config(registry)
    current = client.challenger(registered.model)
    champion = client.champion(registered.model)
    previous = None if current is None else current.version

    def outcome(moved: bool, message: str) -> Deployment:
        done = Deployment(
            model=registered.model,
            alias=CHALLENGER,
            version=registered.version,
            moved=moved,
            previous=previous,
            message=message,
        )
        client.log_json(run.run_id, "reports/deploy.json", done.model_dump(mode="json"))
        return done

    if not verdict.passed:
        return outcome(False, f"not deployed: the gate {verdict.summary()}")
    if champion is not None and champion.version == registered.version:
        return outcome(False, f"version {registered.version} is already the champion")
    if previous == registered.version:
        return outcome(False, f"version {registered.version} is already the challenger")
    client.move_alias(
        registered.model,
        CHALLENGER,
        registered.version,
        action="deploy",
        actor=f"pipeline train (MLflow run {run.run_id})",
        reason=f"gate {verdict.summary()}",
    )
    return outcome(True, f"challenger → version {registered.version} (was {previous or 'unset'})")
