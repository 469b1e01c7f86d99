"""The training pipeline's config: defaults, file formats, and messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.pipelines.training import ConfigError, TrainingConfig, load_config
from recops.pipelines.training.config import EventLogSource, WorldSource


def test_defaults_train_on_the_demo_world() -> None:
    config = load_config(None)
    assert isinstance(config.source, WorldSource) and config.source.world.n_users == 1_000
    assert config.split.events == ("click",) and config.exposure_log() is None


def test_toml_yaml_and_json_give_the_same_config(tmp_path: Path) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text(
        '[source]\nkind = "event_log"\npath = "events.sqlite3"\n[model]\nepochs = 3\n'
        '[publish]\nname = "news"\n'
    )
    yaml = tmp_path / "train.yaml"
    yaml.write_text(
        "source: {kind: event_log, path: events.sqlite3}\nmodel: {epochs: 3}\n"
        "publish: {name: news}\n"
    )
    json = tmp_path / "train.json"
    json.write_text(
        '{"source": {"kind": "event_log", "path": "events.sqlite3"}, "model": {"epochs": 3},'
        ' "publish": {"name": "news"}}'
    )
    configs = [load_config(p) for p in (toml, yaml, json)]
    assert configs[0] == configs[1] == configs[2]
    assert isinstance(configs[0].source, EventLogSource)
    assert configs[0].exposure_log() == "events.sqlite3"  # OPE reads the source's log
    assert configs[0].model.epochs == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\nepochs = 0\n", r"line 2: field `model.epochs`: Input should be greater"),
        ("[split]\n\nquantile = 1.5\n", r"line 3: field `split.quantile`.*\(got 1.5\)"),
        ('[source]\nkind = "s3"\n', r"field `source`: Input tag 's3'"),
        ("[publish]\nnmae = 'x'\n", r"field `publish.nmae`: Extra inputs are not permitted"),
        ("[model\n", r"not valid TOML"),
    ],
)
def test_errors_name_the_file_the_field_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(err.value).startswith(str(path))


def test_yaml_and_json_configs_point_at_the_problem(tmp_path: Path) -> None:
    yaml_file = tmp_path / "bad.yaml"
    yaml_file.write_text("model:\n  dim: 8\n  epochs: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line 3: field `model.epochs`"):
        load_config(yaml_file)
    yaml_file.write_text("model:\n  epochs: 2\nmodel:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line 3: key 'model' appears twice"):
        load_config(yaml_file)
    json_file = tmp_path / "bad.json"
    json_file.write_text('{"model": {"epochs": 0}}')  # JSON keys have no lines: the field
    with pytest.raises(ConfigError, match=r"bad.json: field `model.epochs`"):
        load_config(json_file)
    json_file.write_text('{"model":\n {"epochs": }}')
    with pytest.raises(ConfigError, match=r"bad.json, line 2: not valid JSON"):
        load_config(json_file)


def test_unknown_suffixes_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")
    other = tmp_path / "train.ini"
    other.write_text("[source]\n")
    with pytest.raises(ConfigError, match=r"\.toml, \.yaml or \.json"):
        load_config(other)
    assert TrainingConfig.model_validate({}) == load_config(None)
