"""One skill: its name, when to use it, its instructions and the tools it may narrow to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from koda.skills.frontmatter import FrontMatterError, Value, split_front_matter

Source = Literal["project", "user", "built-in"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SkillError(ValueError):
    """Why a SKILL.md cannot be used, as a phrase for a note ("it has no description")."""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str  # one line, for lists and the system prompt
    body: str
    # Tool names the skill narrows to; None leaves every tool available.
    allowed_tools: tuple[str, ...] | None
    source: Source
    location: str  # for people: a project-relative path, "user skills" or "built-in"


def parse_skill(text: str, *, folder: str, source: Source, location: str) -> Skill:
    """A Skill from a SKILL.md's text; `folder` names the skill when the header does not."""
    try:
        header, body = split_front_matter(text)
    except FrontMatterError as exc:
        raise SkillError(str(exc)) from exc
    name = _text(header, "name") or folder
    if not _NAME.match(name):
        raise SkillError(
            f"its name {name[:80]!r} is not 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    description = " ".join(_text(header, "description").split())
    if not description:
        raise SkillError("it has no description (the front matter needs 'description: ...')")
    if not body.strip():
        raise SkillError("it has no instructions after the front matter")
    key = "allowed-tools" if "allowed-tools" in header else "allowed_tools"
    if key in header and header[key] is None:
        raise SkillError(f"its '{key}' is a nested mapping, not a list of tool names")
    allowed = header.get(key)
    return Skill(
        name=name,
        description=description,
        body=body.strip(),
        allowed_tools=tool_names(allowed),
        source=source,
        location=location,
    )


def tool_names(value: Value) -> tuple[str, ...] | None:
    """`allowed-tools` as tool names: a list, or one string split on commas or spaces.

    Claude Code writes patterns such as `Bash(git diff:*)`; Koda limits whole tools, so the
    pattern is dropped and the tool (Bash) kept. An empty list means no limit.
    """
    if value is None:
        return None
    if isinstance(value, str):
        entries = _split_outside_parens(value)
    else:
        entries = [part for item in value for part in _split_outside_parens(item)]
    names: list[str] = []
    for entry in entries:
        name = entry.split("(", 1)[0].strip()
        if name and name not in names:
            names.append(name)
    return tuple(names) or None


def _split_outside_parens(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if depth == 0 and (char == "," or char.isspace()):
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _text(header: dict[str, Value], key: str) -> str:
    value = header.get(key)
    if value is None:
        if key in header:
            raise SkillError(f"its '{key}' is a nested mapping, not text")
        return ""
    if not isinstance(value, str):
        raise SkillError(f"its '{key}' is a list, not text")
    return value.strip()
