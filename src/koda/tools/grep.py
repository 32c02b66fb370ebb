"""Grep: search file contents with a regex, in pure Python so it works everywhere."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from koda.tools.args import one_line, opt_bool, opt_str, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.ignore import Entry, IgnoreRules, glob_to_regex, walk
from koda.tools.paths import display_path, project_root, resolve_in_project, where
from koda.tools.read import SNIFF_BYTES, is_binary
from koda.tools.schema import arguments, boolean, string

MAX_MATCHES = 200
MAX_LINE_CHARS = 300


class Grep:
    name = "Grep"
    description = (
        "Search file contents with a Python regular expression (or plain text with "
        "literal=true). Prints path:line:text for each matching line. Ignored, binary "
        "and build/cache files are skipped."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["pattern"],
            pattern=string("Regex to search for."),
            path=string("File or directory to search (default .)."),
            glob=string('Only search files matching this, e.g. "*.py".'),
            case_insensitive=boolean("Ignore case (default false)."),
            literal=boolean("Treat pattern as plain text (default false)."),
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
        file_glob = opt_str(args, "glob")
        flags = re.IGNORECASE if opt_bool(args, "case_insensitive", False) else 0
        source = re.escape(pattern) if opt_bool(args, "literal", False) else pattern
        try:
            regex = re.compile(source, flags)
        except re.error as exc:
            raise ToolError(
                f"Invalid regex {pattern!r}: {exc}. Set literal to true to search for plain text."
            ) from exc
        root = project_root(ctx.project_root)
        base = resolve_in_project(root, raw)
        shown = display_path(root, base)
        if not base.exists():
            raise ToolError(f"Path not found: {shown}")
        # A file named explicitly is searched whatever the glob says.
        name_filter = None
        if file_glob and base.is_dir():
            name_filter = glob_to_regex(file_glob.strip(), braces=True)
        cap = scaled(ctx, MAX_MATCHES)
        lines: list[str] = []
        for entry in _files(root, base, ctx):
            if name_filter and not _glob_matches(name_filter, file_glob or "", entry, base):
                continue
            for number, text in _search(entry.path, regex):
                lines.append(f"{entry.rel}:{number}:{_cut(text)}")
                if len(lines) >= cap:
                    lines.append(f"[capped at {cap} matches; narrow the pattern or path]")
                    return ToolResult("\n".join(lines))
        if not lines:
            return ToolResult(f"No matches for {pattern!r} in {where(shown)}.")
        return ToolResult("\n".join(lines))


def _files(root: Path, base: Path, ctx: ToolContext) -> Iterator[Entry]:
    # Only regular files: reading a FIFO or device could block forever.
    if not base.is_dir():
        if base.is_file():
            yield Entry(base, display_path(root, base), False, False)
        return
    for entry in walk(
        root, base, IgnoreRules.load(root), should_stop=lambda: ctx.cancel.is_cancelled
    ):
        if entry.is_dir or not entry.path.is_file():
            continue
        # A symlink could lead out of the project; search it only if its target stays inside.
        if entry.is_link and not Path(os.path.realpath(entry.path)).is_relative_to(root):
            continue
        yield entry


def _glob_matches(regex: re.Pattern[str], raw_glob: str, entry: Entry, base: Path) -> bool:
    # Like .gitignore: a glob without a slash matches file names at any depth.
    if "/" not in raw_glob:
        return regex.fullmatch(entry.path.name) is not None
    return regex.fullmatch(entry.path.relative_to(base).as_posix()) is not None


def _search(path: Path, regex: re.Pattern[str]) -> Iterator[tuple[int, str]]:
    """(line number, line) for matching lines; unreadable and binary files yield nothing."""
    try:
        with path.open("rb") as f:
            if is_binary(f.read(SNIFF_BYTES)):
                return
            f.seek(0)
            for number, raw in enumerate(f, start=1):
                text = raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
                if regex.search(text):
                    yield number, text
    except OSError:
        return


def _cut(text: str) -> str:
    if len(text) <= MAX_LINE_CHARS:
        return text
    return text[:MAX_LINE_CHARS] + f" [... {len(text) - MAX_LINE_CHARS} more chars]"
