"""``recops serve`` and ``recops loadtest`` through typer's CliRunner."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import fsspec
import pandas as pd
from typer.testing import CliRunner

from recops.cli import app
from recops.data.schema import Dataset

# Wide enough that rich does not wrap the error messages this file looks for.
runner = CliRunner(env={"COLUMNS": "300"})


def test_serve_refuses_a_missing_repository(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--models", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "is not a folder" in result.output


def test_serve_validates_settings_from_the_environment(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["serve", "--models", str(tmp_path)],
        env={"RECOPS_HISTORY_SIZE": "0", "COLUMNS": "300"},
    )
    assert result.exit_code != 0 and "history_size" in result.output


def test_loadtest_reports_and_writes_json(tmp_path: Path) -> None:
    interactions = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "item_id": ["a", "b"],
            "event": ["click", "click"],
            "value": [1.0, 1.0],
            "timestamp": [1, 2],
        }
    )
    Dataset(interactions).save(tmp_path / "data")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: every request is refused
    out = tmp_path / "report.json"
    args = [
        "loadtest",
        "--url",
        f"http://127.0.0.1:{port}",
        "--dataset",
        str(tmp_path / "data"),
        "--duration",
        "0.3",
        "--warmup",
        "0",
        "--concurrency",
        "1",
        "--json",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "load test" in result.output and "recommend" in result.output
    report = json.loads(out.read_text())
    assert report["endpoints"]["all"]["errors"] == report["endpoints"]["all"]["requests"] > 0


def test_loadtest_explains_bad_options(tmp_path: Path) -> None:
    bad_mix = runner.invoke(app, ["loadtest", "--mix", "recommend"])
    assert bad_mix.exit_code != 0 and "--mix must look like" in bad_mix.output
    remote = runner.invoke(
        app, ["loadtest", "--url", "http://10.1.2.3:8000", "--dataset", str(tmp_path)]
    )
    assert remote.exit_code != 0
    missing = runner.invoke(app, ["loadtest", "--dataset", str(tmp_path / "none")])
    assert missing.exit_code != 0 and "not a recops dataset" in missing.output


def test_models_lists_versions(tmp_path: Path) -> None:
    for version in ("1", "2", "10"):
        (tmp_path / "news" / version).mkdir(parents=True)
    result = runner.invoke(app, ["models", "--models", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1, 2, 10" in result.output and "news" in result.output
    empty = runner.invoke(app, ["models", "--models", str(tmp_path / "news" / "1")])
    assert "holds no models" in empty.output


def test_models_lists_versions_on_object_storage() -> None:
    url = f"memory://recops-cli-{uuid.uuid4().hex}"
    fs, root = fsspec.core.url_to_fs(url)
    for version in ("1", "2"):
        fs.pipe(f"{root}/news/{version}/config.json", b"{}")
    fs.pipe(f"{root}/news/3/weights.safetensors", b"an upload without its manifest yet")
    result = runner.invoke(app, ["models", "--models", url])
    assert result.exit_code == 0, result.output
    assert "1, 2 " in result.output and "1, 2, 3" not in result.output
    fs.rm(root, recursive=True)
    missing = runner.invoke(app, ["serve", "--models", url])
    assert missing.exit_code != 0 and "holds nothing" in missing.output


def test_serve_reads_a_config_file_and_refuses_unknown_names(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text(f'model_repository = "{tmp_path / "nowhere"}"\n')
    missing = runner.invoke(app, ["serve", "--config", str(config)])
    assert missing.exit_code == 2 and "nowhere is not a folder" in missing.output
    config.write_text("prot = 9000\n")
    typo = runner.invoke(app, ["serve", "--config", str(config)])
    assert typo.exit_code == 2 and "unknown setting 'prot'" in typo.output
    env = {"RECOPS_PROT": "9000", "COLUMNS": "300"}
    unknown = runner.invoke(app, ["serve", "--models", str(tmp_path)], env=env)
    assert unknown.exit_code == 2 and "did you mean RECOPS_PORT" in unknown.output
