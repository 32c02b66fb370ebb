"""What project walks skip: build/cache directories and whatever the project's ignore files say.

Ignore files are read the way ripgrep reads them, so the pure-Python walk here and `rg` (see
ripgrep.py) yield the same files:

- in every directory `.rgignore`, `.ignore` and `.gitignore` (nested files included), and the
  project's `.git/info/exclude`; rules of a file match paths relative to its directory;
- a path's verdict comes from the first of those kinds, in that order, with a rule matching it;
  within a kind the deepest directory's file decides, and within a file the last matching line,
  so `!pattern` re-includes what an earlier line excluded;
- each entry is judged alone as the walk reaches it, and nothing inside an ignored directory is
  visited, so (as in git) a negation cannot bring back a file whose directory is excluded.

Hidden files are searched; the well-known build/cache directories in SKIP_DIRS never are.
Git's global excludes (core.excludesFile) are not read: results must not depend on the user's
home directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
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
        ".nox",
        ".next",
        ".cache",
        ".gradle",
    }
)

# Highest precedence first, as ripgrep ranks them.
IGNORE_FILES = (".rgignore", ".ignore", ".gitignore")


def glob_to_regex(pattern: str, *, unclosed_class: str = "literal") -> re.Pattern[str]:
    """Compile a slash-aware glob: `*` and `?` stay within one path segment, `**` spans any.

    `{a,b}` is an alternative (as in ripgrep's globs; an unclosed brace is literal text).
    An unclosed `[` is literal text, or, with `unclosed_class="never"`, makes the glob match
    nothing, which is what git and ripgrep do with such a line in an ignore file. A class
    Python cannot compile (`[z-a]`) raises re.error.
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
        elif pattern[i] == "[":
            end = _class_end(pattern, i)
            if end == _UNCLOSED and unclosed_class == "never":
                return re.compile("(?!)")
            if end < 0:
                out.append(re.escape("["))
                i += 1
                continue
            body = pattern[i + 1 : end]
            if body[:1] == "!":
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\").replace("[", "\\[") + "]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif pattern[i] == "{":
            out.append("(?:")
            depth += 1
            i += 1
        elif depth and pattern[i] == ",":
            out.append("|")
            i += 1
        elif depth and pattern[i] == "}":
            out.append(")")
            depth -= 1
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    if depth:
        # An unclosed brace would leave an open group; match it as plain text instead.
        escaped = pattern.replace("{", "\\{")
        return glob_to_regex(escaped, unclosed_class=unclosed_class)
    return re.compile("".join(out), re.DOTALL)


_UNCLOSED = -1
_HAS_SLASH = -2


def _class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or why it is not a class."""
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    end = pattern.find("]", i)
    if end < 0:
        return _UNCLOSED
    return _HAS_SLASH if "/" in pattern[start:end] else end


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    # Patterns with a slash match the whole path relative to the ignore file; others a name.
    anchored: bool
    glob: str  # the pattern as written, escapes kept, without "!", leading "/" and trailing "/"

    def line(self, prefix: str) -> str:
        """This rule, read in the directory `prefix`, as a line of an ignore file at the root."""
        where = _escape_glob(prefix) if prefix else ("/" if self.anchored else "")
        if prefix and not self.anchored:
            where += "**/"
        return ("!" if self.negate else "") + where + self.glob + ("/" if self.dir_only else "")


class IgnoreFile:
    """The rules of one ignore file."""

    def __init__(self, rules: Sequence[_Rule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def parse(cls, text: str) -> IgnoreFile:
        text = text.removeprefix("\ufeff")
        return cls([rule for line in text.split("\n") if (rule := _parse_line(line))])

    @classmethod
    def load(cls, path: Path) -> IgnoreFile | None:
        """The file's rules, or None when it is missing, unreadable or has no rules."""
        try:
            data = path.read_bytes()
        except OSError:
            return None
        # surrogateescape keeps non-UTF-8 names matchable, as os.scandir reports them.
        parsed = cls.parse(data.decode("utf-8", "surrogateescape"))
        return parsed if parsed.rules else None

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """True if ignored, False if re-included by a `!` rule, None if no rule matches."""
        name = rel.rsplit("/", 1)[-1]
        for rule in reversed(self.rules):
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.fullmatch(rel if rule.anchored else name):
                return not rule.negate
        return None


def _parse_line(line: str) -> _Rule | None:
    # As ripgrep reads a line: trailing whitespace (a CR included) is dropped unless the
    # line ends with an escaped space.
    if line.startswith("#"):
        return None
    if not line.endswith("\\ "):
        line = line.rstrip()
    if not line:
        return None
    negate = False
    leading_slash = False
    if line.startswith(("\\!", "\\#")):
        line = line[1:]
    else:
        if line.startswith("!"):
            negate = True
            line = line[1:]
        if line.startswith("/"):
            leading_slash = True
            line = line[1:]
    dir_only = line.endswith("/")
    if dir_only:
        line = line[:-1]
    if not line:
        return None
    anchored = leading_slash or "/" in line
    try:
        regex = glob_to_regex(line, unclosed_class="never")
    except re.error:
        # A class like [z-a]: git and ripgrep both drop such a line.
        return None
    # Written back for ripgrep: a leading "!" or "#" must stay escaped.
    glob = "\\" + line if line.startswith(("!", "#")) else line
    return _Rule(regex, negate, dir_only, anchored, glob)


def _escape_glob(prefix: str) -> str:
    return "".join("\\" + c if c in "\\*?[]{}!#" else c for c in prefix)


@dataclass(frozen=True)
class _Level:
    prefix: str  # the directory, project-relative with a trailing "/" ("" for the root)
    files: tuple[IgnoreFile | None, ...]  # one per IGNORE_FILES kind


class Ignores:
    """The ignore rules in force inside one directory: its own files and its parents'."""

    def __init__(self, levels: tuple[_Level, ...] = (), exclude: IgnoreFile | None = None):
        self.levels = levels
        self.exclude = exclude

    @classmethod
    def above(cls, root: Path, start: Path) -> Ignores:
        """The rules that apply to `start`'s entries from the project root down to its parent."""
        ignores = cls((), IgnoreFile.load(git_dir(root) / "info" / "exclude"))
        parts = start.relative_to(root).parts
        parents = [root] if parts else []
        for part in parts[:-1]:
            parents.append(parents[-1] / part)
        for directory in parents:
            ignores = ignores.enter(directory, dir_prefix(root, directory), set(IGNORE_FILES))
        return ignores

    def enter(self, directory: Path, prefix: str, names: set[str]) -> Ignores:
        """The rules inside `directory`, which holds the entries `names`."""
        files = tuple(
            IgnoreFile.load(directory / kind) if kind in names else None for kind in IGNORE_FILES
        )
        if not any(files):
            return self
        return Ignores((*self.levels, _Level(prefix, files)), self.exclude)

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether the entry at project-relative `rel` is left out (its parents are not checked)."""
        for kind in range(len(IGNORE_FILES)):
            for level in reversed(self.levels):
                rules = level.files[kind]
                if rules is not None:
                    verdict = rules.verdict(rel[len(level.prefix) :], is_dir)
                    if verdict is not None:
                        return verdict
        if self.exclude is not None:
            return self.exclude.verdict(rel, is_dir) is True
        return False

    def as_one_file(self) -> str | None:
        """These rules as one .gitignore rooted at the project root, lowest precedence first.

        None when that cannot say the same thing: a .ignore or .rgignore outranks every
        .gitignore, which one file's last-match-wins order cannot express.
        """
        lines = [rule.line("") for rule in self.exclude.rules] if self.exclude else []
        for level in self.levels:
            custom, dot, git = level.files
            if custom is not None or dot is not None:
                return None
            if git is not None:
                lines.extend(rule.line(level.prefix) for rule in git.rules)
        if any("\n" in line or "\r" in line for line in lines):
            return None
        return "".join(line + "\n" for line in lines)


def git_dir(root: Path) -> Path:
    """The project's git directory, following a `.git` file (worktrees, submodules)."""
    dot_git = root / ".git"
    try:
        text = dot_git.read_text(encoding="utf-8") if dot_git.is_file() else ""
    except (OSError, UnicodeError):
        return dot_git
    if not text.startswith("gitdir:"):
        return dot_git
    gitdir = (root / text[len("gitdir:") :].strip()).resolve()
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError):
        return gitdir
    return (gitdir / common).resolve()


def dir_prefix(root: Path, directory: Path) -> str:
    """`directory` as the start of the project-relative paths inside it ("" for the root)."""
    rel = directory.relative_to(root).as_posix()
    return "" if rel == "." else rel + "/"


@dataclass(frozen=True)
class Entry:
    path: Path
    rel: str  # posix, relative to the project root
    is_dir: bool
    is_link: bool
    is_file: bool  # a regular file (not a link, FIFO, socket or device)


def walk(
    root: Path,
    start: Path,
    *,
    recursive: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Entry]:
    """Entries under `start` in path order (depth first, names sorted), minus skipped ones.

    `start` itself is never filtered: asking for `build/` explicitly should search it.
    Symlinked directories are listed but not entered: following them could loop or
    leave the project.
    """
    yield from _walk(root, start, Ignores.above(root, start), recursive, should_stop)


def _walk(
    root: Path,
    directory: Path,
    parent: Ignores,
    recursive: bool,
    should_stop: Callable[[], bool],
) -> Iterator[Entry]:
    try:
        with os.scandir(directory) as it:
            items = sorted(it, key=lambda e: e.name)
    except OSError:
        # An unreadable directory is simply not listed; the walk goes on.
        return
    prefix = dir_prefix(root, directory)
    ignores = parent.enter(directory, prefix, {item.name for item in items})
    for item in items:
        if should_stop():
            return
        try:
            is_dir = item.is_dir(follow_symlinks=False)
            is_link = item.is_symlink()
            is_file = item.is_file(follow_symlinks=False)
        except OSError:
            continue
        if is_dir and item.name in SKIP_DIRS:
            continue
        rel = prefix + item.name
        if ignores.is_ignored(rel, is_dir):
            continue
        path = Path(item.path)
        yield Entry(path, rel, is_dir, is_link, is_file)
        if is_dir and recursive:
            yield from _walk(root, path, ignores, True, should_stop)


def path_key(rel: str) -> tuple[str, ...]:
    """The order walk() yields paths in, for sorting paths that came from elsewhere."""
    return tuple(rel.split("/"))


def printable(rel: str) -> str:
    """A walked path for output: bytes that are not UTF-8 in a name shown as U+FFFD."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
