"""Experiment configs: what loads, and every refusal with the message that says what to fix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recops.experiments.config import (
    ExperimentConfig,
    ExperimentConfigError,
    GreedySpec,
    ModelRef,
    PlackettLuceSpec,
    SoftmaxBanditSpec,
    load_experiment,
    parse_experiment,
    parse_metric,
    resolve_variants,
)

# The example of the shared design (DESIGN.md), line numbers matter below.
TOML = """\
name = "ranker-v2"
salt = "ranker-v2"
layer = "ranking"
type = "ab"
unit = "user_id"
traffic = 0.2
holdout = 0.0
control = "control"
start = 2026-12-01T00:00:00Z
stop = 2026-12-15T00:00:00Z
primary_metric = "clicks/impressions"
guardrails = [{ metric = "latency_ms", direction = "increase", max_relative_change = 0.05 }]

[[variants]]
name = "control"
weight = 1
model = "two_tower"
version = "3"
policy = { kind = "greedy" }

[[variants]]
name = "pl"
weight = 1
version = "4"
policy = { kind = "plackett_luce", temperature = 0.5, pool = 20, explore_slots = 3 }
"""

YAML = """\
name: ranker-v2
layer: ranking
traffic: 0.2
control: control
start: 2026-12-01T00:00:00Z
stop: 2026-12-15T00:00:00Z
primary_metric: clicks/impressions
guardrails:
  - {metric: latency_ms, direction: increase, max_relative_change: 0.05}
variants:
  - name: control
    model: two_tower
    version: 3
  - name: pl
    version: "4"
    policy:
      kind: plackett_luce
      temperature: 0.5
"""


def _toml(old: str | None = None, new: str = "", text: str = TOML) -> ExperimentConfig:
    if old is not None:
        assert old in text, old
        text = text.replace(old, new, 1)
    return parse_experiment(text, "toml", source="ranker.toml")


def _refused(old: str, new: str, text: str = TOML) -> str:
    with pytest.raises(ExperimentConfigError) as info:
        _toml(old, new, text)
    return str(info.value)


def test_the_design_example_loads_with_its_values():
    config = _toml()
    assert config.name == config.salt == "ranker-v2"
    assert (config.layer, config.type, config.unit) == ("ranking", "ab", "user_id")
    assert config.traffic == 0.2 and config.reserved == 0.2
    assert config.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert config.guardrails[0].max_relative_change == 0.05
    assert config.variant("control").policy == GreedySpec()
    assert config.variant("pl").policy == PlackettLuceSpec(
        kind="plackett_luce", temperature=0.5, pool=20, explore_slots=3
    )


def test_yaml_gives_the_same_config_as_toml(tmp_path):
    file = tmp_path / "ranker.yaml"
    file.write_text(YAML)
    assert load_experiment(file) == _toml()


def test_defaults_salt_from_name_and_versions_from_numbers():
    config = _toml('salt = "ranker-v2"\n', "", _toml_text_with_int_version())
    assert config.salt == "ranker-v2"
    assert config.variant("control").version == "3"


def _toml_text_with_int_version() -> str:
    return TOML.replace('version = "3"', "version = 3")


def test_config_round_trips_through_json():
    config = _toml('policy = { kind = "greedy" }', 'policy = { kind = "softmax_bandit" }')
    assert isinstance(config.variant("control").policy, SoftmaxBanditSpec)
    assert ExperimentConfig.model_validate_json(config.model_dump_json()) == config
    assert next(iter(config.model_dump()["variants"][0]["policy"])) == "kind"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "weight = 1\nversion",
            "weight = 0\nversion",
            "ranker.toml, line 23, field 'variants[1].weight': Input should be greater than 0 "
            "(got 0)",
        ),
        (
            "weight = 1\nversion",
            "weight = -2\nversion",
            "field 'variants[1].weight': Input should be greater than 0 (got -2)",
        ),
        (
            'control = "control"',
            'control = "baseline"',
            "line 8, field 'control': control 'baseline' is not one of the variants (control, pl)",
        ),
        (
            'name = "pl"',
            'name = "control"',
            "line 22, field 'variants[1].name': variant name 'control' is used twice",
        ),
        (
            'type = "ab"',
            'type = "interleaving"\n',
            None,  # two equal weights: fine
        ),
        (
            "holdout = 0.0",
            "holdout = 1.0",
            "field 'holdout': Input should be less than 1 (got 1.0)",
        ),
        ("holdout = 0.0", "holdout = 0.00001", "holdout must be 0 or between 0.0001 and 0.9999"),
        ("traffic = 0.2", "traffic = 0", "field 'traffic': Input should be greater than 0 (got 0)"),
        ("traffic = 0.2", "traffic = 1.5", "Input should be less than or equal to 1 (got 1.5)"),
        ("traffic = 0.2", "traffic = 0.00001", "traffic must be at least 0.0001 (one bucket)"),
        (
            "traffic = 0.2",
            "traffic = 0.2\nmax_traffic = 0.1",
            "field 'max_traffic': max_traffic (0.1) must be at least traffic (0.2)",
        ),
        (
            "stop = 2026-12-15T00:00:00Z",
            "stop = 2026-11-15T00:00:00Z",
            "line 10, field 'stop': stop (2026-11-15T00:00:00+00:00) must come after start "
            "(2026-12-01T00:00:00+00:00)",
        ),
        (
            "start = 2026-12-01T00:00:00Z",
            "start = 2026-12-01T00:00:00",
            "line 9, field 'start': give a UTC offset, e.g. 2026-12-01T00:00:00Z",
        ),
        (
            'layer = "ranking"',
            'layr = "ranking"',
            "line 3, field 'layr': unknown field: did you mean `layer`?",
        ),
        (
            'model = "two_tower"',
            'modle = "two_tower"',
            "line 17, field 'variants[0].modle': unknown field: did you mean `model`?",
        ),
        (
            "temperature = 0.5",
            "temprature = 0.5",
            "line 25, field 'variants[1].policy.temprature': unknown field: did you mean "
            "`temperature`?",
        ),
        (
            'kind = "plackett_luce"',
            'kind = "thompson"',
            "field 'variants[1].policy': `kind` must be one of greedy, epsilon_greedy, "
            "plackett_luce, softmax_bandit (got 'thompson')",
        ),
        (
            'kind = "plackett_luce", ',
            "",
            "field 'variants[1].policy': `kind` must be one of greedy, epsilon_greedy, "
            "plackett_luce, softmax_bandit (got none)",
        ),
        (
            "temperature = 0.5",
            "temperature = 0",
            "field 'variants[1].policy.temperature': Input should be greater than 0 (got 0)",
        ),
        (
            "explore_slots = 3",
            "explore_slots = 30",
            "field 'variants[1].policy.explore_slots': explore_slots (30) must not exceed "
            "pool (20)",
        ),
        (
            'primary_metric = "clicks/impressions"',
            'primary_metric = "clicks/"',
            "line 11, field 'primary_metric': a metric is a column name (`clicks`) or a ratio of "
            "two (`clicks/impressions`)",
        ),
        (
            'primary_metric = "clicks/impressions"',
            'primary_metric = "clicks/clicks"',
            "a ratio metric needs two different columns (got 'clicks/clicks')",
        ),
        (
            'metric = "latency_ms"',
            'metric = "latency ms"',
            "line 12, field 'guardrails[0].metric': a metric is a column name",
        ),
        (
            'direction = "increase"',
            'direction = "up"',
            "field 'guardrails[0].direction': Input should be 'increase' or 'decrease' (got 'up')",
        ),
        (
            'version = "4"',
            'version = "4"\nalias = "latest"',
            "field 'variants[1].version': give one of `version` (e.g. \"3\") or `alias` "
            '(e.g. "latest"), got both',
        ),
        (
            'version = "4"',
            "",
            "field 'variants[1].version': give one of `version` (e.g. \"3\") or `alias` "
            '(e.g. "latest"), got neither',
        ),
        (
            'name = "pl"',
            'name = "holdout"',
            "field 'variants[1].name': 'holdout' is reserved",
        ),
        (
            'salt = "ranker-v2"',
            'salt = "ranker:v2"',
            "line 2, field 'salt': use 1-128 letters, digits, '.', '_' or '-' (no ':') "
            "(got 'ranker:v2')",
        ),
        (
            'name = "ranker-v2"',
            'name = "ranker v2"',
            "line 1, field 'name': use 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (got 'ranker v2')",
        ),
        (
            'version = "4"',
            'version = "../4"',
            "field 'variants[1].version': use 1-128 letters, digits",
        ),
    ],
)
def test_each_bad_config_is_refused_naming_line_field_and_fix(old, new, expected):
    if expected is None:
        _toml(old, new)
        return
    assert expected in _refused(old, new)


def test_fewer_than_two_variants_is_refused_counting_what_was_written():
    one = TOML[: TOML.index('[[variants]]\nname = "pl"')]
    message = _refused("", "", one)
    assert "field 'variants': an experiment needs at least 2 variants" in message
    assert "(got 1)" in message
    # An invalid variant is still counted: the message is about that variant, not the count.
    message = _refused("weight = 1\nversion", "weight = 0\nversion")
    assert "at least 2 variants" not in message


def test_interleaving_needs_exactly_two_variants_with_equal_weights():
    three = TOML.replace('type = "ab"', 'type = "interleaving"') + (
        '\n[[variants]]\nname = "c"\nversion = "5"\n'
    )
    assert "merges exactly 2 rankings (got 3)" in _refused("", "", three)
    unequal = TOML.replace('type = "ab"', 'type = "interleaving"')
    assert "field 'variants[1].weight': an interleaving experiment shows both rankings" in (
        _refused("weight = 1\nversion", "weight = 2\nversion", unequal)
    )


def test_a_weight_too_small_for_one_bucket_is_refused():
    message = _refused("weight = 1\nversion", "weight = 0.00001\nversion")
    assert "field 'variants[1].weight': weight 1e-05 gives variant 'pl' no bucket of 10000" in (
        message
    )


def test_all_problems_are_listed_at_once():
    message = _refused('layer = "ranking"', 'layer = "ranking"\nfoo = 1\ntraffic_x = 2')
    assert "(2 problem(s))" in message
    assert "'foo'" in message and "'traffic_x'" in message


def test_toml_lines_follow_tables_and_arrays_of_tables():
    text = """\
name = "x"
control = "a"
primary_metric = "clicks"

[[guardrails]]
metric = "latency_ms"
direction = "increase"

[[guardrails]]
metric = "revenue"
direction = "sideways"

[[variants]]
name = "a"
version = "1"

[[variants]]
name = "b"
version = "2"
[variants.policy]
kind = "epsilon_greedy"
epsilon = 3
"""
    message = _refused("", "", text)
    assert "line 11, field 'guardrails[1].direction'" in message
    assert "line 22, field 'variants[1].policy.epsilon'" in message


def test_yaml_errors_name_the_line(tmp_path):
    file = tmp_path / "x.yml"
    file.write_text(YAML.replace("temperature: 0.5", "temperature: -1"))
    with pytest.raises(ExperimentConfigError, match=r"x.yml, line 18, field 'variants\[1\]"):
        load_experiment(file)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("x.toml", 'name = "x"\ncontrol = [\n', "x.toml: not valid TOML: "),
        ("x.toml", 'name = "x"\nname = "y"\n', "x.toml: not valid TOML: Cannot overwrite"),
        ("x.yaml", "name: x\nvariants: [1\ncontrol: a\n", "x.yaml, line 3: not valid YAML: "),
        ("x.yaml", "name: x\nname: y\n", "x.yaml, line 2: key 'name' appears twice"),
        ("x.yaml", "- name\n", "x.yaml: expected a table of experiment fields (got list)"),
        ("x.yaml", "", "x.yaml: expected a table of experiment fields (got NoneType)"),
        ("x.json", "{}", "x.json: an experiment config is a .toml, .yaml or .yml file (got .json)"),
    ],
)
def test_unreadable_files_are_refused_with_the_parser_position(tmp_path, name, text, expected):
    file = tmp_path / name
    file.write_text(text)
    with pytest.raises(ExperimentConfigError) as info:
        load_experiment(file)
    assert str(info.value).startswith(str(tmp_path / expected))


def test_toml_syntax_errors_carry_the_parser_line(tmp_path):
    file = tmp_path / "x.toml"
    file.write_text('name = "x"\ncontrol = = 1\n')
    with pytest.raises(ExperimentConfigError, match=r"at line 2"):
        load_experiment(file)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ExperimentConfigError, match=r"nothere\.toml: no such file"):
        load_experiment(tmp_path / "nothere.toml")


def _resolver(model: str | None, version: str | None, alias: str | None) -> ModelRef:
    versions = {"two_tower": ["3", "4"]}
    name = model or "two_tower"
    if name not in versions:
        raise LookupError(f"no model {name!r} in the repository")
    if alias is not None:
        if alias != "latest":
            raise LookupError(f"unknown alias {alias!r} (known: latest)")
        return ModelRef(name, versions[name][-1])
    if version not in versions[name]:
        raise LookupError(f"no version {version!r} of model {name!r}")
    return ModelRef(name, str(version))


def test_versions_are_resolved_through_the_callers_resolver():
    config = _toml()
    assert resolve_variants(config, _resolver) == {
        "control": ModelRef("two_tower", "3"),
        "pl": ModelRef("two_tower", "4"),
    }
    aliased = _toml('version = "4"', 'alias = "latest"')
    assert resolve_variants(aliased, _resolver)["pl"] == ModelRef("two_tower", "4")


def test_unknown_versions_and_aliases_are_refused_with_the_line(tmp_path):
    file = tmp_path / "ranker.toml"
    file.write_text(
        TOML.replace('version = "4"', 'version = "9"').replace(
            'version = "3"', 'alias = "champion"'
        )
    )
    with pytest.raises(ExperimentConfigError) as info:
        load_experiment(file, _resolver)
    message = str(info.value)
    assert (
        f"{file}, line 18, field 'variants[0].alias': unknown alias 'champion' (known: latest)"
        in (message)
    )
    assert f"{file}, line 24, field 'variants[1].version': no version '9' of model 'two_tower'" in (
        message
    )


@pytest.mark.parametrize(
    ("name", "parts"),
    [("clicks", ("clicks", None)), ("clicks/impressions", ("clicks", "impressions"))],
)
def test_parse_metric(name, parts):
    assert parse_metric(name) == parts


@pytest.mark.parametrize("name", ["", "a/b/c", "1clicks", "clicks/", "/x", "a-b", "a/a"])
def test_parse_metric_refuses(name):
    with pytest.raises(ValueError, match=r"metric|ratio"):
        parse_metric(name)


def test_a_plackett_luce_head_too_large_for_exact_propensities_is_refused() -> None:
    from pydantic import ValidationError

    from recops.experiments.config import PlackettLuceSpec

    assert PlackettLuceSpec(kind="plackett_luce", pool=40, explore_slots=4).pool == 40
    with pytest.raises(ValidationError, match="C\\(pool, explore_slots\\) = 3,921,225 exceeds"):
        PlackettLuceSpec(kind="plackett_luce", pool=100, explore_slots=4)
