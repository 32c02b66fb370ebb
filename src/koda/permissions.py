"""Permission rules from koda.toml: `Tool` or `Tool(pattern)`, listed under allow, ask or deny.

A rule's pattern is matched against the call's subject:

- Bash: the command. `*` is any run of characters (spaces too), `?` one character. Deny and
  ask match when the whole line or any one simple command in it matches; allow only when every
  simple command matches an allow rule or is read-only, so `Bash(npm test*)` never lets
  `npm test && rm -rf ~` through. A line that cannot be parsed is never allowed by a rule.
- Read, Write, Edit, Delete, List, Glob, Grep: the path argument, relative to the project root,
  matched like a .gitignore line: `*` stays within one path segment, `**` spans any depth, a
  pattern without `/` matches a name at any depth, and a pattern matching a directory covers
  everything inside it. A pattern starting with `/` or `~` is an absolute path. A path is
  judged both as written and with symbolic links resolved: deny and ask match if either form
  matches, allow only if both do.
- WebFetch: the URL's host name, as a plain glob (`*.python.org` matches any subdomain).
- WebSearch: the query, as a plain glob, ignoring case.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from koda.tools.base import Effect
from koda.tools.bash_effect import classify, simple_commands
from koda.tools.ignore import glob_to_regex

Action = Literal["allow", "ask", "deny"]

PATH_TOOLS = frozenset({"Read", "Write", "Edit", "Delete", "List", "Glob", "Grep"})
# Without a path these search or list the whole project.
ROOT_BY_DEFAULT = frozenset({"List", "Glob", "Grep"})
SUBJECT_TOOLS = PATH_TOOLS | {"Bash", "WebFetch", "WebSearch"}


class RuleError(ValueError):
    """A rule that cannot be understood; the message says what is wrong and how to fix it."""


@functools.cache
def known_tools() -> tuple[str, ...]:
    from koda.tools.catalog import default_catalog

    return tuple(default_catalog().names())


@dataclass(frozen=True)
class _Glob:
    regex: re.Pattern[str]
    # For paths: "absolute", "anchored" (relative, with a slash) or "name"; else "plain".
    kind: str


@dataclass(frozen=True)
class Rule:
    tool: str  # the catalog's spelling
    pattern: str | None  # None: every call of the tool
    text: str  # as written in the file
    source: Path | None = None  # the koda.toml it came from
    glob: _Glob | None = field(default=None, compare=False, repr=False)

    def where(self) -> str:
        return f"{self.text} in {self.source}" if self.source else self.text


@dataclass(frozen=True)
class Match:
    action: Action
    rule: Rule


def parse_rule(text: str, source: Path | None = None) -> Rule:
    """`Tool` or `Tool(pattern)`; RuleError says what is wrong with anything else."""
    stripped = text.strip()
    name = re.match(r"[A-Za-z][A-Za-z0-9_]*", stripped)
    if name is None:
        raise RuleError(
            f"'{text}' is not a rule: write a tool name, such as Delete, or Tool(pattern), "
            "such as Bash(npm test*)"
        )
    tool = _canonical(name.group())
    rest = stripped[name.end() :].strip()
    if not rest:
        return Rule(tool, None, stripped, source)
    if not rest.startswith("(") or not _balanced(rest):
        what = "unbalanced parentheses" if rest.count("(") != rest.count(")") else "unexpected text"
        raise RuleError(
            f"{what} in '{text}': write {tool} or {tool}(pattern), with the pattern inside one "
            "pair of parentheses (use ? for a lone parenthesis in a pattern)"
        )
    pattern = rest[1:-1].strip()
    if tool not in SUBJECT_TOOLS:
        raise RuleError(
            f"{tool} has nothing a pattern could match, so '{text}' cannot work: write it as "
            f"{tool}. Patterns work for {', '.join(sorted(SUBJECT_TOOLS))}"
        )
    if not pattern:
        raise RuleError(f"'{text}' has an empty pattern: write {tool} to match every call")
    return Rule(tool, pattern, stripped, source, _compile(tool, pattern, text))


def _canonical(name: str) -> str:
    names = {n.lower(): n for n in known_tools()}
    found = names.get(name.lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(name.lower(), list(names), n=1)
    hint = f"did you mean {names[close[0]]}? " if close else ""
    raise RuleError(f"unknown tool '{name}': {hint}Known tools: {', '.join(known_tools())}")


def _balanced(rest: str) -> bool:
    """Whether `rest` is one parenthesised group: `(` first, its matching `)` last."""
    depth = 0
    for i, c in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth == 0:
            return i == len(rest) - 1
    return False


def _compile(tool: str, pattern: str, text: str) -> _Glob:
    if tool in PATH_TOOLS:
        return _path_glob(pattern, text)
    if tool == "WebFetch" and ("/" in pattern or ":" in pattern):
        raise RuleError(
            f"'{text}': WebFetch rules match the host name only, such as "
            "WebFetch(docs.python.org) or WebFetch(*.python.org)"
        )
    return _Glob(_plain_glob(pattern, ignore_case=tool != "Bash"), "plain")


def _plain_glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _path_glob(pattern: str, text: str) -> _Glob:
    if pattern.startswith("~"):
        pattern = os.path.expanduser(pattern)
    pattern = pattern.removeprefix("./")
    if len(pattern) > 1:
        pattern = pattern.rstrip("/")  # a directory covers what is inside it anyway
    kind = "absolute" if pattern.startswith("/") else "anchored" if "/" in pattern else "name"
    try:
        return _Glob(glob_to_regex(pattern), kind)
    except re.error as exc:
        raise RuleError(f"'{text}': the pattern is not a valid glob ({exc})") from None


@dataclass(frozen=True)
class PermissionRules:
    allow: tuple[Rule, ...] = ()
    ask: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()

    @classmethod
    def parse(
        cls,
        allow: Iterable[str] = (),
        ask: Iterable[str] = (),
        deny: Iterable[str] = (),
        source: Path | None = None,
    ) -> PermissionRules:
        def rules(texts: Iterable[str]) -> tuple[Rule, ...]:
            return tuple(parse_rule(text, source) for text in texts)

        return cls(rules(allow), rules(ask), rules(deny))

    def merged(self, other: PermissionRules) -> PermissionRules:
        """Both sets apply: a deny from either file beats an allow from the other."""
        return PermissionRules(
            self.allow + other.allow, self.ask + other.ask, self.deny + other.deny
        )

    def __bool__(self) -> bool:
        return bool(self.allow or self.ask or self.deny)

    def decide(self, tool: str, args: Mapping[str, Any], project_root: Path) -> Match | None:
        """The rule that decides this call: a deny first, then an ask, then an allow."""
        if not any(r.tool == tool for r in (*self.deny, *self.ask, *self.allow)):
            return None
        call = _Call(tool, args, project_root)
        stops: tuple[tuple[Action, tuple[Rule, ...]], ...] = (
            ("deny", self.deny),
            ("ask", self.ask),
        )
        for action, rules in stops:
            rule = next((r for r in rules if r.tool == tool and call.touches(r)), None)
            if rule is not None:
                return Match(action, rule)
        rule = call.allowed_by([r for r in self.allow if r.tool == tool])
        return Match("allow", rule) if rule is not None else None


class _Call:
    """One tool call's subjects, worked out once for matching against many rules."""

    def __init__(self, tool: str, args: Mapping[str, Any], root: Path) -> None:
        self.tool = tool
        self.line: str | None = None
        self.commands: list[str] | None = None
        self.paths: list[_PathForm] = []
        self.plain: str | None = None
        if tool == "Bash":
            command = args.get("command")
            if isinstance(command, str):
                self.line = command.strip()
                self.commands = simple_commands(command)
        elif tool in PATH_TOOLS:
            self.paths = _path_forms(args.get("path"), root, tool in ROOT_BY_DEFAULT)
        elif tool == "WebFetch":
            self.plain = _host(args.get("url"))
        elif tool == "WebSearch":
            query = args.get("query")
            self.plain = query.strip() if isinstance(query, str) else None

    def touches(self, rule: Rule) -> bool:
        """For deny and ask: any part of the call matching is enough."""
        if rule.glob is None:
            return True
        if self.tool == "Bash":
            parts = [self.line, *(self.commands or [])] if self.line is not None else []
            return any(rule.glob.regex.fullmatch(p) for p in parts)
        if self.tool in PATH_TOOLS:
            return any(form.matches(rule.glob) for form in self.paths)
        return self.plain is not None and bool(rule.glob.regex.fullmatch(self.plain))

    def allowed_by(self, rules: list[Rule]) -> Rule | None:
        """For allow: the rule that lets the whole call through, if one does."""
        bare = next((r for r in rules if r.glob is None), None)
        if bare is not None or not rules:
            return bare
        if self.tool == "Bash":
            return self._allowed_command(rules)
        if self.tool in PATH_TOOLS:
            if not self.paths:
                return None
            return next((r for r in rules if all(f.matches(r.glob) for f in self.paths)), None)
        return next((r for r in rules if self.touches(r)), None)

    def _allowed_command(self, rules: list[Rule]) -> Rule | None:
        if not self.commands:
            return None
        chosen: Rule | None = None
        for command in self.commands:
            rule = next((r for r in rules if r.glob and r.glob.regex.fullmatch(command)), None)
            if rule is None and classify(command) is not Effect.READ_ONLY:
                return None
            chosen = chosen or rule
        return chosen


@dataclass(frozen=True)
class _PathForm:
    absolute: str
    rel: str | None  # relative to the project root, "." for the root; None outside it

    def matches(self, glob: _Glob | None) -> bool:
        if glob is None:
            return True
        if glob.kind == "absolute":
            return any(glob.regex.fullmatch(p) for p in _ancestors(self.absolute))
        if glob.kind == "anchored":
            return self.rel is not None and any(
                glob.regex.fullmatch(p) for p in _ancestors(self.rel)
            )
        names = (self.rel if self.rel is not None else self.absolute).split("/")
        return any(glob.regex.fullmatch(name) for name in names if name)


def _ancestors(path: str) -> list[str]:
    """`a/b/c` → a, a/b, a/b/c (absolute paths keep their leading slash)."""
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts)) if parts[i]]


def _path_forms(raw: object, root: Path, root_by_default: bool) -> list[_PathForm]:
    if not isinstance(raw, str) or not raw.strip():
        if not root_by_default:
            return []
        raw = "."
    try:
        lexical = os.path.normpath(os.path.join(root, raw))
        real = _form(os.path.realpath(lexical), os.path.realpath(root))
    except (OSError, ValueError):  # a NUL byte, a loop: the tool refuses such a path anyway
        return []
    forms = [_form(lexical, os.path.normpath(root))]
    return forms if real == forms[0] else [*forms, real]


def _form(path: str, root: str) -> _PathForm:
    if path == root:
        return _PathForm(path, ".")
    inside = path.startswith(root.rstrip("/") + "/")
    return _PathForm(path, path[len(root.rstrip("/")) + 1 :] if inside else None)


def _host(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None
