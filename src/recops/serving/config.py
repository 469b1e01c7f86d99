"""Where the server's settings come from: options, ``RECOPS_*`` variables, a config file.

Every field of :class:`~recops.serving.settings.ServerSettings` can be set three ways;
the first that sets it wins:

1. a command-line option of ``recops serve`` (the few it has);
2. the environment variable ``RECOPS_<FIELD>`` (``RECOPS_PORT=9000``,
   ``RECOPS_ADMIN_TOKEN=...``): every setting has one;
3. the config file, ``recops serve --config FILE`` or ``RECOPS_CONFIG=FILE``: TOML
   (``.toml``) or YAML (``.yaml``/``.yml``), one key per field at the top level
   (``port = 9000``);

then the embedded default. Read with pydantic-settings (its environment source, the
file as a second source), validated once. A misspelt name is an error, not a
silent default: an unknown ``RECOPS_*`` variable (those of :data:`OTHER_VARIABLES`
aside) or an unknown key of the file stops the start, with the closest valid names.
Errors name their source: the option, the variable, or the file, line and key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from recops.config_files import Format, Lines, line_of, parse_config_text
from recops.serving.settings import ENV_PREFIX, ServerSettings

#: ``RECOPS_*`` variables that are not server settings, and what reads them.
OTHER_VARIABLES = {
    "RECOPS_CONFIG": "the server's config file (this module)",
    "RECOPS_DATA_DIR": "where datasets are found (recops.data)",
    "RECOPS_HOME": "the project's data folder (recops.pipelines, recops.registry)",
    "RECOPS_SERVER_SETTINGS": "the settings recops serve hands its workers",
    "RECOPS_TEST_POSTGRES_URL": "the backend tests' PostgreSQL server (.ci/backends.sh)",
    "RECOPS_TEST_REDIS_URL": "the backend tests' Redis server (.ci/backends.sh)",
}


class SettingsError(ValueError):
    """Settings that cannot work; the message names where the bad value came from."""


def env_name(field: str) -> str:
    """The environment variable of a setting: ``RECOPS_<FIELD>``."""
    return ENV_PREFIX + field.upper()


def check_environment(environ: Mapping[str, str]) -> None:
    """SettingsError for a ``RECOPS_*`` variable that nothing reads (a typo, an old name)."""
    known = {env_name(f) for f in ServerSettings.model_fields} | set(OTHER_VARIABLES)
    unknown = sorted(k for k in environ if k.upper().startswith(ENV_PREFIX))
    problems = [
        f"unknown environment variable {k}{_did_you_mean(k.upper(), known)}"
        for k in unknown
        if k.upper() not in known
    ]
    if problems:
        raise SettingsError(
            "; ".join(problems)
            + " (every setting's variable is RECOPS_<FIELD>, see `recops serve --help`)"
        )


def _did_you_mean(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def read_config_file(path: Path) -> tuple[dict[str, Any], Lines]:
    """The settings of a TOML or YAML file and the line of each, keys checked against the fields."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SettingsError(f"config file {path}: expected a .toml, .yaml or .yml file")
    fmt: Format = "toml" if suffix == ".toml" else "yaml"
    values, lines = parse_config_text(text, fmt, f"config file {path}", SettingsError)
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise SettingsError(f"config file {path}: expected a mapping of settings at the top level")
    fields = set(ServerSettings.model_fields)
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=2, cutoff=0.6)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise SettingsError(f"{_where(path, lines, str(key))}: unknown setting {key!r}{hint}")
    return values, lines


def _where(path: Path, lines: Lines, key: str) -> str:
    """``config file F, line N`` of the line that sets ``key`` (or just the file)."""
    line = line_of((key,), lines)
    return f"config file {path}" + ("" if line is None else f", line {line}")


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, on a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class _Values(PydanticBaseSettingsSource):
    """A source of fixed values (the config file's)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: object,
) -> ServerSettings:
    """The server's settings from the options, the environment and the config file.

    Parameters
    ----------
    config_file:
        TOML or YAML file; ``RECOPS_CONFIG`` when None, else none.
    environ:
        The environment; ``os.environ`` by default.
    **overrides:
        Values of command-line options; ``None`` means "not given".

    Raises
    ------
    SettingsError
        A bad or unknown name or value, naming its source.
    """
    env = os.environ if environ is None else environ
    check_environment(env)
    path = config_file or (Path(env["RECOPS_CONFIG"]) if env.get("RECOPS_CONFIG") else None)
    file_values, lines = read_config_file(path) if path is not None else ({}, {})
    given = {k: v for k, v in overrides.items() if v is not None}

    class _Loader(BaseSettings, ServerSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                init_settings,
                _Environment(settings_cls, env),
                _Values(settings_cls, file_values),
            )

    try:
        loaded = _Loader(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_explain(exc, given, env, path, lines)) from None
    return ServerSettings.model_validate(loaded.model_dump())


def _explain(
    exc: ValidationError,
    given: dict[str, object],
    env: Mapping[str, str],
    path: Path | None,
    lines: Lines,
) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        if field in given:
            source = f"option for {field}"
        elif any(k.upper() == env_name(field) for k in env):
            source = f"environment variable {env_name(field)} (setting {field})"
        elif path is not None and field:
            source = f"{_where(path, lines, field)}: {field}"
        else:
            source = field or "settings"
        problems.append(f"{source}: {error['msg']}")
    return "; ".join(problems)
