"""The GitHub Actions workflows: schema, triggers, jobs and steps, and the train steps run.

GitHub itself is out of reach: the workflows are checked against the workflow schema
that check-jsonschema vendors, their structure is checked here, and the steps of the
train workflow that need no cloud (write the config, compile the pipeline) run as
written.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from recops.pipelines.training.config import load_config
from recops.registry.config import GatedTrainingConfig

from .conftest import ROOT
from .schemas import load_yaml, schema_errors

WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("ci", "deploy", "train")


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return {name: load_yaml(WORKFLOWS / f"{name}.yaml") for name in NAMES}


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def _step(workflow: dict[str, Any], job: str, uses: str) -> dict[str, Any]:
    found = [s for s in _steps(workflow, job) if s.get("uses", "").startswith(uses + "@")]
    assert len(found) == 1, f"job {job}: expected one step using {uses}, got {len(found)}"
    return found[0]


def _run_step(workflow: dict[str, Any], job: str, contains: str) -> dict[str, Any]:
    found = [s for s in _steps(workflow, job) if contains in s.get("run", "")]
    assert len(found) == 1, f"job {job}: expected one step running {contains!r}"
    return found[0]


def _github_variables() -> set[str]:
    """The repository variables Terraform's `github_variables` output lists."""
    hcl2 = pytest.importorskip("hcl2", reason="reading Terraform needs python-hcl2: pip install it")
    with (ROOT / "deploy" / "terraform" / "outputs.tf").open() as f:
        outputs = hcl2.load(f)["output"]
    block = next(o['"github_variables"'] for o in outputs if '"github_variables"' in o)
    return {k for k in block["value"] if not k.startswith("__")}


@pytest.mark.parametrize("name", NAMES)
def test_valid_against_the_workflow_schema(workflows: dict[str, dict[str, Any]], name: str) -> None:
    assert schema_errors(workflows[name], "github-workflows") == []
    broken = copy.deepcopy(workflows[name])
    next(iter(broken["jobs"].values()))["timeout-minutes"] = "soon"
    assert schema_errors(broken, "github-workflows"), "the schema must catch a malformed job"


@pytest.mark.parametrize("name", NAMES)
def test_expressions_stay_out_of_scripts(workflows: dict[str, dict[str, Any]], name: str) -> None:
    # A ${{ }} inside `run` is pasted into the script before bash reads it (script
    # injection); the workflows pass every value through `env` instead.
    for job in workflows[name]["jobs"].values():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), step


@pytest.mark.parametrize("name", NAMES)
def test_no_long_lived_credentials(name: str) -> None:
    text = (WORKFLOWS / f"{name}.yaml").read_text(encoding="utf-8")
    assert "credentials_json" not in text and "secrets." not in text


def test_ci_runs_the_readme_test_command_on_every_pull_request(
    workflows: dict[str, dict[str, Any]],
) -> None:
    ci = workflows["ci"]
    assert set(ci["on"]) == {"pull_request", "workflow_call"}
    job = ci["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    python = _step(ci, "test", "actions/setup-python")["with"]
    assert python["python-version"] == "3.11" and python["cache"] == "pip"
    steps = _steps(ci, "test")
    run = _run_step(ci, "test", "bash .ci/run")
    torch = _run_step(ci, "test", "torch==2.13.0")
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch["run"]
    assert steps.index(torch) < steps.index(run)
    # Not root on GitHub's runners: .ci/run's backend servers come from packages there.
    servers = _run_step(ci, "test", "postgresql redis-server")
    assert steps.index(servers) < steps.index(run)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    test_command = re.search(r'pip install -e "\.\[test\]" && python -m pytest', readme)
    assert test_command, "README's second command changed: update .ci/run and this test"
    assert test_command.group(0) in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_deploy_tests_then_ships_main_with_workload_identity(
    workflows: dict[str, dict[str, Any]],
) -> None:
    deploy = workflows["deploy"]
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert deploy["jobs"]["test"]["uses"] == "./.github/workflows/ci.yaml"
    job = deploy["jobs"]["deploy"]
    assert job["needs"] == "test"
    assert job["permissions"]["id-token"] == "write"
    auth = _step(deploy, "deploy", "google-github-actions/auth")["with"]
    assert set(auth) == {"workload_identity_provider", "service_account"}
    build = _step(deploy, "deploy", "docker/build-push-action")["with"]
    assert build["push"] is True and "${{ env.IMAGE }}" in build["tags"]
    assert job["env"]["IMAGE"].endswith(":${{ github.sha }}")
    run = _step(deploy, "deploy", "google-github-actions/deploy-cloudrun")["with"]
    assert run["image"] == "${{ env.IMAGE }}"
    steps = _steps(deploy, "deploy")
    assert steps.index(_step(deploy, "deploy", "google-github-actions/auth")) < steps.index(
        _step(deploy, "deploy", "docker/build-push-action")
    )


def test_train_compiles_for_kfp_and_submits_to_vertex_on_a_schedule(
    workflows: dict[str, dict[str, Any]],
) -> None:
    train = workflows["train"]
    (schedule,) = train["on"]["schedule"]
    assert len(schedule["cron"].split()) == 5
    assert "workflow_dispatch" in train["on"]
    job = train["jobs"]["train"]
    assert job["permissions"]["id-token"] == "write"
    assert job["env"]["IMAGE"].endswith(":${{ github.sha }}"), "steps run the commit's image"
    compile_step = _run_step(train, "train", "recops pipeline compile train --target kfp")
    submit = _run_step(train, "train", "aiplatform.PipelineJob(")
    script = submit["run"].split("<<'PY'\n", 1)[1].rsplit("PY", 1)[0]
    compile(script, "train.yaml: submit step", "exec")
    assert 'service_account=os.environ["GCP_PIPELINES_SERVICE_ACCOUNT"]' in script
    steps = _steps(train, "train")
    assert steps.index(compile_step) < steps.index(submit)


@pytest.mark.parametrize("name", ("deploy", "train"))
def test_variables_are_those_terraform_outputs(name: str) -> None:
    text = (WORKFLOWS / f"{name}.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\bvars\.([A-Z_][A-Z0-9_]*)", text))
    assert used, name
    missing = used - _github_variables()
    assert not missing, f"{name} reads {missing}, which `terraform output github_variables` lacks"


def test_train_steps_run_as_written(workflows: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    train = workflows["train"]
    image = "europe-west1-docker.pkg.dev/project/recops/recops:0123abc"
    env = {
        **os.environ,
        "RUNNER_TEMP": str(tmp_path),
        "ARTIFACT_BUCKET": "test-bucket",
        "IMAGE": image,
    }
    for contains in ("deploy/pipelines/vertex.toml", "recops pipeline compile"):
        script = _run_step(train, "train", contains)["run"]
        # GitHub's default shell for `run` on Linux.
        subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=180,
        )
    config = load_config(tmp_path / "train.toml", GatedTrainingConfig)
    assert config.publish.repository == "/gcs/test-bucket/models"
    spec = yaml.safe_load((tmp_path / "train-pipeline.yaml").read_text())
    executors = spec["deploymentSpec"]["executors"]
    assert executors and {e["container"]["image"] for e in executors.values()} == {image}
    assert all(
        e["container"]["command"][:3] == ["recops", "pipeline", "step"] for e in executors.values()
    )
