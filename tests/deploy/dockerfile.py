"""A reader of the Dockerfile's instructions, enough to run its commands outside a container.

Follows the Dockerfile reference: ``\\`` continues a line, ``#`` starts a comment line,
``ENV`` takes ``KEY=VALUE`` pairs (shell-quoted), ``ENTRYPOINT`` / ``CMD`` /
``HEALTHCHECK CMD`` take a JSON array in exec form.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    """One ``FROM ... AS name`` stage and its instructions, in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every ``keyword`` instruction of the stage."""
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        """The arguments of the stage's last ``keyword`` (the one in effect)."""
        found = self.all(keyword)
        if not found:
            raise AssertionError(f"stage {self.name or self.base}: no {keyword} instruction")
        return found[-1]

    def env(self) -> dict[str, str]:
        """Every ``ENV KEY=VALUE`` of the stage, later ones winning."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, sep, value = pair.partition("=")
                if not sep:
                    raise AssertionError(f"ENV {args!r}: use the KEY=VALUE form")
                values[key] = value
        return values


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """The global ``ARG`` defaults (before the first ``FROM``) and the stages."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        raise AssertionError(f"{path}: the last instruction ends with a line continuation")

    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
        elif keyword == "ARG":
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            raise AssertionError(f"{path}: {keyword} before the first FROM")
    return args, stages


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list; anything else is an error here."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        raise AssertionError(f"not exec form (a JSON array): {args!r}") from None
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        raise AssertionError(f"not a non-empty JSON array of strings: {args!r}")
    return value


def healthcheck(args: str) -> tuple[dict[str, str], list[str]]:
    """A ``HEALTHCHECK`` instruction's ``--option=value`` flags and its exec-form command."""
    options: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        key, _, value = option[2:].partition("=")
        options[key] = value
        rest = rest.strip()
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD":
        raise AssertionError(f"HEALTHCHECK without CMD: {args!r}")
    return options, exec_form(command.strip())
