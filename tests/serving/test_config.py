"""Settings from options, RECOPS_* variables and a TOML/YAML file; misspelt names are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from recops.serving.config import SettingsError, env_name, load_settings
from recops.serving.settings import ServerSettings


def test_options_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('host = "0.0.0.0"\nport = 9000\nhistory_size = 20\nreplay = true\n')
    env = {"RECOPS_PORT": "9100", "RECOPS_ADMIN_TOKEN": "secret", "RECOPS_DATA_DIR": "/data"}
    settings = load_settings(config, env, port=9200, history_size=None)
    assert (settings.host, settings.port, settings.history_size) == ("0.0.0.0", 9200, 20)
    assert settings.admin_token == "secret" and settings.replay is True
    assert load_settings(config, env).port == 9100
    assert load_settings(None, {"RECOPS_CONFIG": str(config)}).port == 9000


def test_a_yaml_file_works_the_same(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("port: 9001\nevent_quota_bytes_per_s: 0\nlog_level: info\n")
    settings = load_settings(config, {})
    assert (settings.port, settings.event_quota_bytes_per_s, settings.log_level) == (
        9001,
        0,
        "info",
    )


def test_every_setting_has_its_variable() -> None:
    defaults = ServerSettings()
    for field in ServerSettings.model_fields:
        if field in {"pinned_version", "run_dir", "worker_index"} or not isinstance(
            getattr(defaults, field), (int, float, str, bool)
        ):
            continue
        value = getattr(defaults, field)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        got = load_settings(None, {env_name(field): text})
        assert getattr(got, field) == value, field
    assert load_settings(None, {"RECOPS_HOST": "::1", "RECOPS_PORT": "0"}).port == 0


def test_unknown_names_are_errors_with_the_closest_valid_one(tmp_path: Path) -> None:
    with pytest.raises(
        SettingsError, match=r"unknown environment variable RECOPS_PROT .*RECOPS_PORT"
    ):
        load_settings(None, {"RECOPS_PROT": "9000"})
    config = tmp_path / "serve.toml"
    config.write_text('host = "x"\n\nmax_conections = 10\n')
    with pytest.raises(
        SettingsError,
        match=r"serve\.toml, line 3: unknown setting 'max_conections' \(did you mean max_conn",
    ):
        load_settings(config, {})


def test_bad_values_name_their_source(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text("port = 9000\nhistory_size = 0\n")
    with pytest.raises(
        SettingsError, match=r"serve.toml, line 2: history_size: .*greater than or equal to 1"
    ):
        load_settings(config, {})
    with pytest.raises(SettingsError, match=r"environment variable RECOPS_PORT .*port"):
        load_settings(None, {"RECOPS_PORT": "http"})
    with pytest.raises(SettingsError, match="option for port"):
        load_settings(None, {}, port=-1)
    bad = tmp_path / "broken.yaml"
    bad.write_text("port: [1,\n")
    with pytest.raises(SettingsError, match=r"broken\.yaml, line \d+: not valid YAML"):
        load_settings(bad, {})
    ini = tmp_path / "serve.ini"
    ini.write_text("port=1\n")
    with pytest.raises(SettingsError, match=r"expected a \.toml, \.yaml or \.yml file"):
        load_settings(ini, {})
    with pytest.raises(SettingsError, match="No such file"):
        load_settings(tmp_path / "missing.toml", {})
