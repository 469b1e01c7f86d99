"""Config files read with the line of every key: TOML, YAML and JSON."""

from __future__ import annotations

import pytest

from recops.config_files import field_path, line_of, parse_config_text, where

TOML = """\
name = "ranker"          # line 1

[[variants]]             # line 3
name = "control"
weight = 1

[[variants]]             # line 7
name = "pl"
weight = 0
tags = [
  "a = 1",               # inside an array: not a key
]
[variants.policy]        # line 13: belongs to the second variant
kind = "plackett_luce"
"""


def test_toml_keys_map_to_their_lines_through_arrays_of_tables() -> None:
    values, lines = parse_config_text(TOML, "toml", "x.toml")
    assert values["variants"][1]["policy"]["kind"] == "plackett_luce"
    assert lines[("name",)] == 1
    assert lines[("variants", 0)] == 3 and lines[("variants", 0, "weight")] == 5
    assert lines[("variants", 1, "weight")] == 9
    assert lines[("variants", 1, "policy")] == 13
    assert lines[("variants", 1, "policy", "kind")] == 14
    assert ("a",) not in lines and ("variants", 1, "a") not in lines
    # A field inside what the file spells out maps to its deepest known part.
    assert line_of(("variants", 1, "policy", "pool"), lines) == 13
    assert line_of(("absent",), lines) is None


def test_yaml_keys_map_to_their_lines_and_duplicates_are_refused() -> None:
    values, lines = parse_config_text("a:\n  b: 1\n  c:\n    - 2\n    - 3\n", "yaml", "x.yaml")
    assert values == {"a": {"b": 1, "c": [2, 3]}}
    assert lines[("a", "b")] == 2 and lines[("a", "c", 1)] == 5
    with pytest.raises(ValueError, match=r"x.yaml, line 3: key 'b' appears twice"):
        parse_config_text("a:\n  b: 1\n  b: 2\n", "yaml", "x.yaml")
    with pytest.raises(KeyError, match=r"x.yaml, line 2: not valid YAML"):
        parse_config_text("a: [1\nb: 2\n", "yaml", "x.yaml", KeyError)


def test_syntax_errors_name_the_source_and_the_line() -> None:
    with pytest.raises(ValueError, match=r"x.toml: not valid TOML: .*line 2"):
        parse_config_text('a = 1\nb = "\n', "toml", "x.toml")
    with pytest.raises(ValueError, match=r"x.json, line 2: not valid JSON"):
        parse_config_text('{"a":\n }', "json", "x.json")
    assert parse_config_text('{"a": [1]}', "json", "x.json") == ({"a": [1]}, {})


def test_where_names_the_file_the_line_and_the_field() -> None:
    lines = {("variants",): 3, ("variants", 1, "weight"): 9}
    assert field_path(("variants", 1, "policy", "pool")) == "variants[1].policy.pool"
    assert where("x.toml", ("variants", 1, "weight"), lines) == (
        "x.toml, line 9, field 'variants[1].weight'"
    )
    assert where("x.toml", ("salt",), lines) == "x.toml, field 'salt'"
    assert where("x.toml", (), None) == "x.toml"
