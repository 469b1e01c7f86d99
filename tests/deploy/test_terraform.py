"""The Terraform for Google Cloud Run: syntax, references, documentation, privileges.

``terraform validate`` needs the provider plugins, which cannot be downloaded here;
the files are parsed with python-hcl2 instead, every ``var.``, ``local.`` and resource
reference is checked against what the module declares, and ``terraform fmt -check``
runs when a ``terraform`` binary is on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from recops.serving.config import check_environment

from .conftest import ROOT
from .dockerfile import parse

hcl2 = pytest.importorskip("hcl2", reason="reading Terraform needs python-hcl2: pip install it")

TERRAFORM = ROOT / "deploy" / "terraform"
MODULES = (TERRAFORM, TERRAFORM / "bootstrap")
FILES = sorted(TERRAFORM.rglob("*.tf"))


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps a string's quotes (``'"x"'``); the value without them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _load(module: Path) -> dict[str, list[Any]]:
    """Every top-level block of the module's files, by kind (variable, resource, ...)."""
    blocks: dict[str, list[Any]] = {}
    for path in sorted(module.glob("*.tf")):
        with path.open() as f:
            for kind, entries in hcl2.load(f).items():
                if not kind.startswith("__"):
                    blocks.setdefault(kind, []).extend(entries)
    return blocks


def _named(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``[{'"name"': body}, ...]`` as ``{name: body}``."""
    return {_unquote(k): v for entry in entries for k, v in entry.items()}


def _resources(blocks: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """``{"type.name": body}`` of every resource."""
    found = {}
    for entry in blocks.get("resource", []):
        for rtype, named in entry.items():
            for name, body in named.items():
                found[f"{_unquote(rtype)}.{_unquote(name)}"] = body
    return found


def _code(module: Path) -> str:
    """The module's text without its comments."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(module.glob("*.tf")))
    return re.sub(r"(?m)^\s*#.*$|\s#\s.*$", "", text)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_file_parses(path: Path) -> None:
    with path.open() as f:
        assert hcl2.load(f)


def test_google_provider_5_and_a_gcs_backend() -> None:
    for module in MODULES:
        (terraform,) = _load(module)["terraform"]
        providers = terraform["required_providers"][0]
        assert _unquote(providers["google"]["version"]) == "~> 5.0", module
        if "google-beta" in providers:
            assert _unquote(providers["google-beta"]["version"]) == "~> 5.0"
    (main,) = _load(TERRAFORM)["terraform"]
    backend = _named(main["backend"])
    assert set(backend) == {"gcs"}
    # The bucket is given at `terraform init -backend-config`, never committed.
    assert "bucket" not in backend["gcs"] and _unquote(backend["gcs"]["prefix"])


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_variables_and_outputs_are_described(module: Path) -> None:
    blocks = _load(module)
    for name, body in _named(blocks["variable"]).items():
        assert _unquote(body.get("description", "")), f"variable {name}: no description"
        assert "type" in body, f"variable {name}: no type"
    for name, body in _named(blocks["output"]).items():
        assert _unquote(body.get("description", "")), f"output {name}: no description"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_every_reference_is_declared(module: Path) -> None:
    blocks = _load(module)
    code = _code(module)
    variables = set(_named(blocks["variable"]))
    used_variables = set(re.findall(r"\bvar\.(\w+)", code))
    assert used_variables <= variables, f"undeclared: {used_variables - variables}"
    assert variables <= used_variables, f"declared, never used: {variables - used_variables}"
    local_names = {k for entry in blocks.get("locals", []) for k in entry if not k.startswith("__")}
    used_locals = set(re.findall(r"\blocal\.(\w+)", code))
    assert used_locals <= local_names, f"undeclared locals: {used_locals - local_names}"
    resources = set(_resources(blocks))
    mentioned = re.findall(r"\b((?:google|random)_\w+)\.(\w+)", code)
    referenced = {f"{t}.{n}" for t, n in mentioned}
    assert referenced <= resources, f"undeclared resources: {referenced - resources}"


def _readme_table(heading: str) -> dict[str, str]:
    """The first column (without backquotes) -> the second, of the table under ``heading``."""
    text = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [ln.split("|")[1:-1] for ln in section.splitlines() if ln.startswith("| `")]
    return {cells[0].strip().strip("`"): cells[1].strip() for cells in rows}


def test_readme_documents_every_variable_and_output() -> None:
    blocks = _load(TERRAFORM)
    variables = _named(blocks["variable"])
    documented = _readme_table("### Variables")
    assert set(documented) == set(variables)
    for name, body in variables.items():
        required = documented[name] == "(required)"
        assert required == ("default" not in body), f"{name}: README and default disagree"
    assert set(_readme_table("### Outputs")) == set(_named(blocks["output"]))


def test_the_resources_issue_13_asks_for() -> None:
    resources = _resources(_load(TERRAFORM))
    for wanted in (
        "google_cloud_run_v2_service.recops",
        "google_artifact_registry_repository.recops",
        "google_sql_database_instance.recops",
        "google_redis_instance.state",
        "google_storage_bucket.artifacts",
        "google_iam_workload_identity_pool_provider.github",
    ):
        assert wanted in resources, wanted
    accounts = [r for r in resources if r.startswith("google_service_account.")]
    assert len(accounts) == 3, accounts
    state = _resources(_load(TERRAFORM / "bootstrap"))["google_storage_bucket.state"]
    assert state["versioning"][0]["enabled"] is True


def test_least_privilege() -> None:
    resources = _resources(_load(TERRAFORM))
    assert not [r for r in resources if r.startswith("google_service_account_key.")]
    project_roles = {
        _unquote(body["role"])
        for name, body in resources.items()
        if name.startswith("google_project_iam_member.")
    }
    # Vertex AI Pipelines has no narrower grant; everything else is on one resource.
    assert project_roles == {"roles/aiplatform.user"}
    roles = {_unquote(b["role"]) for n, b in resources.items() if "iam_member" in n}
    assert not roles & {"roles/owner", "roles/editor", "roles/storage.admin", "roles/run.admin"}
    condition = _unquote(
        resources["google_iam_workload_identity_pool_provider.github"]["attribute_condition"]
    )
    assert "assertion.repository" in condition and "assertion.ref" in condition


def test_cloud_run_runs_the_image_as_the_server_expects() -> None:
    blocks = _load(TERRAFORM)
    locals_ = {k: v for entry in blocks["locals"] for k, v in entry.items()}
    _, stages = parse(ROOT / "Dockerfile")
    image_env = stages[-1].env()
    server_env = {k: _unquote(v) for k, v in locals_["server_env"].items()}
    # With use_backends = false, the admin token is the only secret variable.
    check_environment({**image_env, **server_env, "RECOPS_ADMIN_TOKEN": "x"})
    template = _resources(blocks)["google_cloud_run_v2_service.recops"]["template"][0]
    (container,) = template["containers"]
    assert container["ports"][0]["container_port"] == int(image_env["RECOPS_PORT"])
    assert _unquote(container["startup_probe"][0]["http_get"][0]["path"]) == "/readyz"
    assert _unquote(container["liveness_probe"][0]["http_get"][0]["path"]) == "/healthz"
    mount = _unquote(locals_["model_mount"])
    assert server_env["RECOPS_MODEL_REPOSITORY"].replace("${local.model_mount}", mount) == (
        f"{mount}/models"
    )
    code = _code(TERRAFORM)
    for name in ("RECOPS_EVENT_LOG_URL", "RECOPS_STATE_URL"):
        assert re.search(rf"var\.use_backends \? {{[^}}]*{name}", code), name


def test_terraform_fmt_check() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH (HashiCorp's releases are not reachable here)")
    run = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff"],
        cwd=TERRAFORM,
        # No call home to HashiCorp's version check.
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
