"""koda.toml: the user's and the project's settings files, read once at start and validated.

Nothing in them is silently ignored: a typo, a wrong type or a rule that cannot work is a
ConfigFileError naming the file and, where it can be found, the line.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from koda.paths import config_dir
from koda.permissions import PermissionRules, Rule, RuleError, parse_rule
from koda.sandbox.allowlist import PatternError, check_pattern
from koda.sandbox.policy import credentials_under

FILE_NAME = "koda.toml"
LIMITS = ("memory_mb", "cpu_seconds", "processes", "output_mb")
_SCHEMA: dict[str, tuple[str, ...]] = {
    "permissions": ("allow", "ask", "deny"),
    "network": ("allow",),
    "sandbox": (*LIMITS, "writable"),
}
_EXAMPLES = {
    "permissions": 'allow = ["Bash(npm test*)"]',
    "network": 'allow = ["internal.example.com"]',
    "sandbox.writable": 'writable = ["~/.local/share/pnpm"]',
}


class ConfigFileError(Exception):
    """A koda.toml that cannot be used: `<path>: line N: what is wrong and how to fix it`."""

    def __init__(
        self, path: Path, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.path = path
        self.line = line
        where = str(path)
        if line is not None:
            where += f": line {line}" + (f", column {column}" if column is not None else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class SandboxSettings:
    """Per-command limits (None: the sandbox's default) and extra writable paths."""

    memory_mb: int | None = None
    cpu_seconds: int | None = None
    processes: int | None = None
    output_mb: int | None = None
    writable: tuple[Path, ...] = ()

    def overridden_by(self, other: SandboxSettings) -> SandboxSettings:
        """`other`'s limits where it sets them; the writable paths of both."""
        limits = {name: getattr(other, name) for name in LIMITS if getattr(other, name)}
        return replace(
            self, writable=tuple(dict.fromkeys(self.writable + other.writable)), **limits
        )


@dataclass(frozen=True)
class FileSettings:
    permissions: PermissionRules = field(default_factory=PermissionRules)
    network_allow: tuple[str, ...] = ()  # egress hosts on top of the defaults
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    sources: tuple[Path, ...] = ()  # the files that were read

    @classmethod
    def empty(cls) -> FileSettings:
        return cls()

    def merged(self, later: FileSettings) -> FileSettings:
        """Both files' rules and hosts; `later`'s limits win where both set one."""
        return FileSettings(
            self.permissions.merged(later.permissions),
            tuple(dict.fromkeys(self.network_allow + later.network_allow)),
            self.sandbox.overridden_by(later.sandbox),
            self.sources + later.sources,
        )


def user_file(user_dir: Path | None = None) -> Path:
    return (user_dir if user_dir is not None else config_dir()) / FILE_NAME


def project_file(project_root: Path) -> Path:
    return project_root / ".koda" / FILE_NAME


def load_settings(project_root: Path, user_dir: Path | None = None) -> FileSettings:
    """The user's koda.toml, then the project's; defaults where neither exists."""
    user, project = user_file(user_dir), project_file(project_root)
    settings = FileSettings.empty()
    for path, is_user in ((user, True), (project, False)):
        if not is_user and _same_file(path, user):
            continue
        text = _read(path)
        if text is not None:
            settings = settings.merged(_Parser(path, text, user).settings())
    return settings


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _read(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise ConfigFileError(path, "is a directory; koda.toml must be a file") from None
    except OSError as exc:
        raise ConfigFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigFileError(path, "is not UTF-8 text; save it as UTF-8", line) from None


_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")


class _Parser:
    """Checks one file against the schema; errors point at the offending line if they can."""

    def __init__(self, path: Path, text: str, user_file: Path) -> None:
        self.path = path
        self.text = text
        self.lines = text.splitlines()
        self.user_file = user_file
        self.is_user = path == user_file

    def settings(self) -> FileSettings:
        data = self._toml()
        self._check_tables(data)
        permissions = data.get("permissions", {})
        network = data.get("network", {})
        sandbox = data.get("sandbox", {})
        return FileSettings(
            PermissionRules(*(self._rules(permissions, key) for key in _SCHEMA["permissions"])),
            tuple(dict.fromkeys(self._host(h) for h in self._strings(network, "network", "allow"))),
            self._sandbox(sandbox),
            (self.path,),
        )

    def fail(self, message: str, line: int | None = None) -> ConfigFileError:
        return ConfigFileError(self.path, message, line)

    def _toml(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            where = _TOML_WHERE.search(message)
            what = message[: where.start()] if where else message
            if where is None or where.group(1) is None:
                raise self.fail(f"not valid TOML: {what}", len(self.lines) or None) from None
            line, column = int(where.group(1)), int(where.group(2))
            raise ConfigFileError(self.path, f"not valid TOML: {what}", line, column) from None

    def _check_tables(self, data: dict[str, Any]) -> None:
        for name, value in data.items():
            if name not in _SCHEMA:
                raise self._unknown_top(name, value)
            if not isinstance(value, dict):
                raise self.fail(
                    f"{name} must be a table: write [{name}] and its keys on the lines below it",
                    self._key_line(None, name),
                )
            key = next((k for k in value if k not in _SCHEMA[name]), None)
            if key is not None:
                raise self.fail(
                    f"unknown key '{key}' in [{name}]: {_hint(key, _SCHEMA[name])}"
                    f"Known keys: {', '.join(_SCHEMA[name])}",
                    self._key_line(name, key),
                )

    def _unknown_top(self, name: str, value: object) -> ConfigFileError:
        if isinstance(value, dict):
            line = self._line(rf"\[\s*{re.escape(name)}\s*\]") or self._key_line(None, name)
            known = ", ".join(f"[{t}]" for t in _SCHEMA)
            return self.fail(f"unknown table [{name}]: {_hint(name, _SCHEMA)}Known: {known}", line)
        owners = " or ".join(f"[{t}]" for t, keys in _SCHEMA.items() if name in keys)
        message = (
            f"'{name}' belongs in a table: write it below {owners}"
            if owners
            else f"unknown key '{name}': settings go under [permissions], [network] or [sandbox]"
        )
        return self.fail(message, self._key_line(None, name))

    def _strings(self, table: dict[str, Any], name: str, key: str) -> list[str]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            example = _EXAMPLES.get(f"{name}.{key}", _EXAMPLES.get(name, f"{key} = []"))
            raise self.fail(
                f"{name}.{key} must be a list of strings, such as {example}",
                self._key_line(name, key),
            )
        return value

    def _rules(self, table: dict[str, Any], key: str) -> tuple[Rule, ...]:
        rules = []
        for text in self._strings(table, "permissions", key):
            try:
                rules.append(parse_rule(text, self.path))
            except RuleError as exc:
                raise self.fail(f"permissions.{key}: {exc}", self._value_line(text)) from None
        return tuple(rules)

    def _host(self, text: str) -> str:
        try:
            return check_pattern(text)
        except PatternError as exc:
            raise self.fail(f"network.allow: {exc}", self._value_line(text)) from None

    def _sandbox(self, table: dict[str, Any]) -> SandboxSettings:
        limits: dict[str, Any] = {}
        for key in LIMITS:
            value = table.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value <= 0
            ):
                raise self.fail(
                    f"sandbox.{key} must be a whole number above 0, such as {key} = "
                    f"{_LIMIT_EXAMPLES[key]} (got {value!r})",
                    self._key_line("sandbox", key),
                )
            if value is not None:
                limits[key] = value
        return replace(SandboxSettings(writable=self._writable(table)), **limits)

    def _writable(self, table: dict[str, Any]) -> tuple[Path, ...]:
        if "writable" in table and not self.is_user:
            raise self.fail(
                "sandbox.writable is only read from your user koda.toml "
                f"({self.user_file}), so a repository cannot widen the sandbox: move it there",
                self._key_line("sandbox", "writable"),
            )
        paths: list[Path] = []
        for text in self._strings(table, "sandbox", "writable"):
            expanded = os.path.expanduser(text.strip())
            if not os.path.isabs(expanded):
                raise self.fail(
                    f"sandbox.writable: '{text}' is a relative path; give an absolute path "
                    "or one starting with ~/",
                    self._value_line(text),
                )
            path = Path(os.path.normpath(expanded))
            if covered := credentials_under(path, Path.home()):
                shown = ", ".join(f"~/{c.relative_to(Path.home())}" for c in covered[:4])
                raise self.fail(
                    f"sandbox.writable: '{text}' holds credential folders and files ({shown}"
                    f"{', …' if len(covered) > 4 else ''}), which commands must not be able to "
                    "create or change; list the narrower folders they need instead, such as "
                    "~/.local/share/pnpm",
                    self._value_line(text),
                )
            paths.append(path)
        return tuple(dict.fromkeys(paths))

    def _line(self, pattern: str, start: int = 0) -> int | None:
        regex = re.compile(pattern)
        for number in range(start, len(self.lines)):
            if regex.search(self.lines[number]):
                return number + 1
        return None

    def _key_line(self, table: str | None, key: str) -> int | None:
        """Best effort: `key =` under `[table]`, else a dotted `table.key =` anywhere."""
        quoted = rf"[\"']?{re.escape(key)}[\"']?"
        if table is not None:
            header = self._line(rf"^\s*\[\s*{re.escape(table)}\s*\]")
            if header is not None:
                found = self._line(rf"^\s*{quoted}\s*=", header)
                if found is not None:
                    return found
            return self._line(rf"^\s*{re.escape(table)}\s*\.\s*{quoted}\s*=")
        return self._line(rf"^\s*{quoted}\s*[=.]")

    def _value_line(self, value: str) -> int | None:
        return self._line(re.escape(f'"{value}"')) or self._line(re.escape(f"'{value}'"))


_LIMIT_EXAMPLES = {"memory_mb": 4096, "cpu_seconds": 300, "processes": 256, "output_mb": 64}


def _hint(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f"did you mean {close[0]}? " if close else ""
