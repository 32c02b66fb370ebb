"""Grep: search file contents with a Python regex; ripgrep, when installed, only speeds it up.

Which lines match is always decided here, in Python, on each file's text: split on "\\n", one
trailing "\\r" dropped, invalid UTF-8 read as U+FFFD. A file holding a NUL byte is binary and
skipped, as is one over MAX_FILE_BYTES. ripgrep (see ripgrep.py and grep_regex.py) only narrows
the files worth reading, so with or without it the output is the same, byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from koda.tools import grep_regex, ripgrep
from koda.tools.args import one_line, opt_bool, opt_int, opt_str, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.ignore import dir_prefix, glob_to_regex, printable
from koda.tools.paths import display_path, project_root, resolve_in_project, where
from koda.tools.ripgrep import Ripgrep
from koda.tools.schema import arguments, boolean, integer, string

MAX_LINES = 200  # printed lines, matches and context together, before scaling
MAX_LINE_CHARS = 300
MAX_CONTEXT = 10
MAX_FILE_BYTES = 64 * 1024 * 1024


class Grep:
    name = "Grep"
    description = (
        "Search file contents; prints path:line:text (context: path-line-text), sorted by "
        "path. Skips ignored, binary and build/cache files. Capped."
    )

    def __init__(self, rg: Ripgrep | Literal["auto"] | None = "auto") -> None:
        """`rg`: the ripgrep to speed searches up with; "auto" finds one, None never uses it."""
        self._rg = rg
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["pattern"],
            pattern=string("Python regex."),
            path=string("File or dir (default .)."),
            glob=string('Filter, e.g. "*.py".'),
            case_insensitive=boolean("Ignore case."),
            literal=boolean("Plain text."),
            context=integer(f"Lines around each match, 0-{MAX_CONTEXT}."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        place = args.get("path")
        suffix = f" in {one_line(place)}" if place else ""
        return f"Grep {one_line(args.get('pattern', ''))}{suffix}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx, args)

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        pattern = req_str(args, "pattern")
        if not pattern:
            # Whitespace is a fine thing to search for, so only "" is refused.
            raise ToolError("Argument 'pattern' must not be empty.")
        raw = opt_str(args, "path", ".") or "."
        file_glob = (opt_str(args, "glob") or "").strip()
        flags = re.IGNORECASE if opt_bool(args, "case_insensitive", False) else 0
        source = re.escape(pattern) if opt_bool(args, "literal", False) else pattern
        # More context than this floods the output; asking for more is not worth an error.
        context = min(opt_int(args, "context", 0, min=0), MAX_CONTEXT)
        matcher = _Matcher.compile(pattern, source, flags)
        root = project_root(ctx.project_root)
        base = resolve_in_project(root, raw)
        shown = display_path(root, base)
        if not base.exists():
            raise ToolError(f"Path not found: {shown}")
        in_glob = _glob_filter(file_glob, root, base)
        if base.is_dir():
            found = self._search_dir(ctx, root, base, matcher, in_glob, context)
        else:
            found = _search_file(base, shown, matcher, context)
        cap = scaled(ctx, MAX_LINES)
        lines, capped = _render(found, context, cap)
        if not lines:
            return ToolResult(f"No matches for {pattern!r} in {where(shown)}.")
        if capped:
            lines.append(
                f"[output capped at {cap} lines; narrow the pattern, path or glob to see the rest]"
            )
        return ToolResult("\n".join(lines))

    def _search_dir(
        self,
        ctx: ToolContext,
        root: Path,
        base: Path,
        matcher: _Matcher,
        in_glob: Callable[[str], bool],
        context: int,
    ) -> Iterator[tuple[str, Iterator[_Hit]]]:
        rg = ripgrep.find() if self._rg == "auto" else self._rg
        paths = ripgrep.files(
            rg,
            root,
            base,
            rg_pattern=matcher.rg_pattern,
            max_filesize=MAX_FILE_BYTES,
            should_stop=lambda: ctx.cancel.is_cancelled,
        )
        for rel in paths:
            if ctx.cancel.is_cancelled:
                return
            if not in_glob(rel):
                continue
            text = _read_text(root / rel)
            if isinstance(text, str):
                yield rel, _with_context(text, _matching_lines(text, matcher), context)


def _search_file(
    path: Path, shown: str, matcher: _Matcher, context: int
) -> Iterator[tuple[str, Iterator[_Hit]]]:
    # A file named explicitly is searched whatever a glob or ignore file says.
    if not path.is_file():
        # Reading a FIFO or device could block forever.
        raise ToolError(f"{shown} is not a regular file; nothing to search.")
    text = _read_text(path)
    if text is _Skip.BINARY:
        raise ToolError(f"{shown} is a binary file; Grep searches text only.")
    if text is _Skip.TOO_LARGE:
        raise ToolError(
            f"{shown} is larger than {MAX_FILE_BYTES // 2**20} MB; Grep does not search it."
        )
    if not isinstance(text, str):
        raise ToolError(f"Could not read {shown}.")
    yield shown, _with_context(text, _matching_lines(text, matcher), context)


@dataclass(frozen=True)
class _Matcher:
    line: re.Pattern[str]  # the contract: a line matches if this finds a match in it
    whole: re.Pattern[str] | None  # finds where to look first, when that is exact
    source: str
    flags: int

    @classmethod
    def compile(cls, pattern: str, source: str, flags: int) -> _Matcher:
        try:
            line = re.compile(source, flags)
        except re.error as exc:
            raise ToolError(
                f"Invalid regex {pattern!r}: {exc}. Set literal to true to search for plain text."
            ) from exc
        except (OverflowError, RecursionError) as exc:
            raise ToolError(f"Regex {pattern!r} is too large or deeply nested.") from exc
        return cls(line, grep_regex.whole_text(source, flags), source, flags)

    def rg_pattern(self) -> str | None:
        return grep_regex.for_ripgrep(self.source, self.flags)


@dataclass(frozen=True)
class _Hit:
    number: int
    text: str
    is_match: bool  # False for a context line


class _Skip(Enum):
    BINARY = "binary"
    TOO_LARGE = "too large"
    UNREADABLE = "unreadable"


def _read_text(path: Path) -> str | _Skip:
    """The file as lines joined by "\\n" (CRLF read as LF), or why it is not searched."""
    # A file swapped since the walk for a symlink (which could lead out of the project) or for
    # a FIFO (which could block) is not read.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                return _Skip.UNREADABLE
            if info.st_size > MAX_FILE_BYTES:
                return _Skip.TOO_LARGE
            data = f.read()
    except OSError:
        return _Skip.UNREADABLE
    if b"\0" in data:
        return _Skip.BINARY
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    return text[:-1] if text.endswith("\r") else text


def _matching_lines(text: str, matcher: _Matcher) -> Iterator[tuple[int, int, int]]:
    """(line number, start, end) of each matching line, in order."""
    n = len(text)
    pos = 0  # always the start of a line
    number, counted = 1, 0  # the line number at offset `counted`
    while pos < n:
        if matcher.whole is not None:
            found = matcher.whole.search(text, pos)
            if found is None:
                return
            newline = text.rfind("\n", pos, found.start())
            start = pos if newline < 0 else newline + 1
            if start >= n:
                return
        else:
            start = pos
        end = _line_end(text, start)
        number += text.count("\n", counted, start)
        counted = start
        if matcher.line.search(text[start:end]):
            yield number, start, end
        pos = end + 1


def _with_context(
    text: str, matches: Iterable[tuple[int, int, int]], context: int
) -> Iterator[_Hit]:
    """The matching lines with up to `context` lines around each, every line once, in order."""
    emitted, emitted_end = 0, -1  # the last line yielded: its number and end offset
    after_until = 0  # the last line wanted as context after a match
    for number, start, end in matches:
        pos = emitted_end + 1
        while emitted < min(after_until, number - 1):
            line_end = _line_end(text, pos)
            emitted += 1
            yield _Hit(emitted, text[pos:line_end], False)
            emitted_end, pos = line_end, line_end + 1
        first = max(emitted + 1, number - context)
        starts = [start]
        for _ in range(number - first):
            starts.append(text.rfind("\n", 0, starts[-1] - 1) + 1)
        for offset, line_start in enumerate(reversed(starts[1:])):
            yield _Hit(first + offset, text[line_start : _line_end(text, line_start)], False)
        yield _Hit(number, text[start:end], True)
        emitted, emitted_end, after_until = number, end, number + context
    pos = emitted_end + 1
    while emitted < after_until and pos < len(text):
        line_end = _line_end(text, pos)
        emitted += 1
        yield _Hit(emitted, text[pos:line_end], False)
        emitted_end, pos = line_end, line_end + 1


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _render(
    found: Iterable[tuple[str, Iterable[_Hit]]], context: int, cap: int
) -> tuple[list[str], bool]:
    """Output lines like rg's (`path:n:text`, context `path-n-text`, `--` between groups),
    at most `cap` of them not counting separators, and whether more were left out."""
    out: list[str] = []
    count = 0
    for rel, hits in found:
        shown = printable(rel)
        last = -1
        for hit in hits:
            if count == cap:
                return out, True
            if context and out and hit.number != last + 1:
                out.append("--")
            mark = ":" if hit.is_match else "-"
            out.append(f"{shown}{mark}{hit.number}{mark}{_cut(hit.text)}")
            count += 1
            last = hit.number
    return out, False


def _glob_filter(file_glob: str, root: Path, base: Path) -> Callable[[str], bool]:
    """Whether a project-relative path passes the glob: its name, or with a slash its path
    under `base` (like a .gitignore line)."""
    if not file_glob:
        return lambda rel: True
    try:
        regex = glob_to_regex(file_glob.removeprefix("./"))
    except re.error as exc:
        raise ToolError(f"Invalid glob {file_glob!r}: {exc}.") from exc
    if "/" not in file_glob:
        return lambda rel: regex.fullmatch(rel.rsplit("/", 1)[-1]) is not None
    prefix = dir_prefix(root, base)
    return lambda rel: regex.fullmatch(rel[len(prefix) :]) is not None


def _cut(text: str) -> str:
    if len(text) <= MAX_LINE_CHARS:
        return text
    return text[:MAX_LINE_CHARS] + f" [... {len(text) - MAX_LINE_CHARS} more chars]"
