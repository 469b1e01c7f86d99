"""The controller's config: defaults, a pipeline given as a file, errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recops.ct.config import CTConfig, ExperimentTemplate, load_ct_config
from recops.pipelines.training.config import ConfigError


def test_defaults_name_the_model_and_put_the_state_beside_the_event_log(tmp_path: Path) -> None:
    config = CTConfig(event_log=str(tmp_path / "logs" / "events.sqlite3"))
    assert config.model == "two_tower"
    assert config.state_target == tmp_path / "logs" / "recops-ct.sqlite3"
    assert config.snapshot_dir == tmp_path / "logs" / "recops-ct-snapshots"
    # Every promotion changes the model version: score drift never asks for retraining.
    assert config.triggers.drift.monitor.rule("served_score")[2] is False
    assert config.triggers.drift.monitor.rule("click_category")[2] is True
    guardrail = config.experiment.guardrails[0]
    assert (guardrail.metric, guardrail.direction) == ("clicks/requests", "decrease")


def test_a_postgresql_event_log_keeps_the_state_in_its_database(tmp_path: Path) -> None:
    url = "postgresql://ct@db:5432/recops"
    config = CTConfig(event_log=url)
    assert config.state_target == url
    assert config.snapshot_dir == Path("recops-ct-snapshots")  # the working folder
    # Either way, `state` says where: a file, or another database.
    beside = CTConfig(event_log=url, state=str(tmp_path / "ct.sqlite3"))
    assert beside.state_target == tmp_path / "ct.sqlite3"
    assert beside.snapshot_dir == tmp_path / "recops-ct-snapshots"
    other = "postgres://ct@other/ct"
    assert CTConfig(event_log=str(tmp_path / "events.sqlite3"), state=other).state_target == other


def test_a_toml_file_with_the_pipeline_in_its_own_file(tmp_path: Path) -> None:
    pipeline = tmp_path / "train.toml"
    pipeline.write_text('[publish]\nname = "news"\nrepository = "repo"\n[model]\nepochs = 2\n')
    file = tmp_path / "ct.toml"
    file.write_text(
        f'event_log = "events.sqlite3"\npipeline = "{pipeline}"\n'
        "[triggers]\nmin_interval_s = 600\nvolume = { min_new_events = 10 }\n"
        "[experiment]\n"
        'type = "interleaving"\nmin_units = 50\n'
        'guardrails = [{ metric = "clicks/requests", direction = "decrease" }]\n'
        "[watch]\nholdback = 0.2\n"
    )
    config = load_ct_config(file)
    assert config.model == "news" and config.pipeline.model.epochs == 2
    assert config.triggers.volume is not None and config.triggers.volume.min_new_events == 10
    assert config.experiment.type == "interleaving" and config.watch.holdback == 0.2


def test_yaml_with_an_inline_pipeline(tmp_path: Path) -> None:
    file = tmp_path / "ct.yaml"
    file.write_text(
        "pipeline:\n  publish:\n    name: news\ntriggers:\n  schedule:\n    every_s: 60\n"
    )
    config = load_ct_config(file)
    assert config.model == "news"
    assert config.triggers.schedule is not None and config.triggers.schedule.every_s == 60


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[triggers]\nvolume = { min_new_events = 0 }\n", "field `triggers.volume.min_new_events`"),
        ("[experiment]\ntraffic = 2\n", "field `experiment.traffic`"),
        ("[watch]\nholdbak = 0.1\n", "field `watch.holdbak`: Extra inputs are not permitted"),
        ('pipeline = "missing.toml"\n', "field `pipeline`: missing.toml: no such config file"),
        ("[experiment\n", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    file = tmp_path / "ct.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_ct_config(file)
    assert str(file) in str(caught.value) and expected in str(caught.value)


def test_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_ct_config(tmp_path / "absent.toml")


def test_durations_and_interleaving_weights_are_consistent() -> None:
    with pytest.raises(ValidationError, match=r"max_duration_s .* must be at least min_duration_s"):
        ExperimentTemplate(min_duration_s=10, max_duration_s=5)
    with pytest.raises(ValidationError, match="challenger_weight means nothing"):
        ExperimentTemplate(type="interleaving", challenger_weight=0.2)
