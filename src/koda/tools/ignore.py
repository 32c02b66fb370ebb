"""What project walks skip: well-known build/cache directories and the top-level .gitignore."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SKIP_DIRS = frozenset(
    {
        ".git",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        "target",
        "dist",
        "build",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".next",
        ".cache",
    }
)


def glob_to_regex(pattern: str, *, braces: bool = False) -> re.Pattern[str]:
    """Compile a slash-aware glob: `*` and `?` stay within one path segment, `**` spans any.

    `braces` adds `{a,b}` alternatives, which models use in Glob/Grep filters but which
    .gitignore treats as literal text.
    """
    out: list[str] = []
    i, n, depth = 0, len(pattern), 0
    while i < n:
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i) and i + 2 == n and (i == 0 or pattern[i - 1] == "/"):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := _class_end(pattern, i)) > 0:
            body = pattern[i + 1 : end]
            if body[:1] == "!":
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif braces and pattern[i] == "{":
            out.append("(?:")
            depth += 1
            i += 1
        elif braces and depth and pattern[i] == ",":
            out.append("|")
            i += 1
        elif braces and depth and pattern[i] == "}":
            out.append(")")
            depth -= 1
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    # An unclosed brace would leave an open group; fall back to matching the text literally.
    if depth:
        return glob_to_regex(pattern, braces=False)
    return re.compile("".join(out), re.DOTALL)


def _class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 if it is not a class."""
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    end = pattern.find("]", i)
    return -1 if end < 0 or "/" in pattern[start:end] else end


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    # Patterns with a slash match the whole project-relative path; others match any name.
    anchored: bool


class IgnoreRules:
    """The project's top-level .gitignore (nested .gitignore files are not read)."""

    def __init__(self, rules: Sequence[_Rule] = ()) -> None:
        self._rules = tuple(rules)

    @classmethod
    def load(cls, root: Path) -> IgnoreRules:
        try:
            text = (root / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return cls()
        return cls.parse(text)

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        rules = []
        for line in text.splitlines():
            rule = _parse_line(line)
            if rule is not None:
                rules.append(rule)
        return cls(rules)

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        """Whether the project-relative posix path is ignored, including via a parent dir."""
        parts = [p for p in rel_path.split("/") if p not in ("", ".")]
        if not parts:
            return False
        # Git cannot re-include a file whose parent directory is excluded, so any
        # ignored ancestor settles it before the path's own rules are consulted.
        for i in range(1, len(parts)):
            if self.matches("/".join(parts[:i]), True):
                return True
        return self.matches("/".join(parts), is_dir)

    def matches(self, rel: str, is_dir: bool) -> bool:
        """The rules' verdict on this path alone, ignoring its parent directories."""
        ignored = False
        name = rel.rsplit("/", 1)[-1]
        for rule in self._rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(rel if rule.anchored else name):
                ignored = not rule.negate
        return ignored


def _parse_line(line: str) -> _Rule | None:
    line = line.rstrip("\n\r")
    if not line.strip() or line.startswith("#"):
        return None
    # Trailing spaces are insignificant unless escaped with a backslash.
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    negate = line.startswith("!")
    # A leading backslash escapes a literal "!" or "#".
    if negate or line.startswith(("\\!", "\\#")):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    return _Rule(glob_to_regex(line), negate, dir_only, anchored)


@dataclass(frozen=True)
class Entry:
    path: Path
    rel: str  # posix, relative to the project root
    is_dir: bool
    is_link: bool


def walk(
    root: Path,
    start: Path,
    rules: IgnoreRules,
    *,
    recursive: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Entry]:
    """Entries under `start` in name order, depth first, minus skipped and ignored ones.

    `start` itself is never filtered: asking for `build/` explicitly should search it.
    Symlinked directories are listed but not entered: following them could loop or
    leave the project.
    """
    try:
        with os.scandir(start) as it:
            items = sorted(it, key=lambda e: e.name)
    except OSError:
        # An unreadable directory is simply not listed; the walk goes on.
        return
    for item in items:
        if should_stop():
            return
        try:
            is_dir = item.is_dir(follow_symlinks=False)
            is_link = item.is_symlink()
        except OSError:
            continue
        if is_dir and item.name in SKIP_DIRS:
            continue
        path = Path(item.path)
        rel = path.relative_to(root).as_posix()
        # Parents were checked on the way down, so only the entry itself needs the rules.
        if rules.matches(rel, is_dir):
            continue
        yield Entry(path, rel, is_dir, is_link)
        if is_dir and recursive:
            yield from walk(root, path, rules, recursive=True, should_stop=should_stop)
