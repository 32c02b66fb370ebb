"""Glob: find project files by name pattern, most recently changed first."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from koda.tools.args import one_line, opt_str, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.ignore import IgnoreRules, glob_to_regex, walk
from koda.tools.paths import display_path, project_root, resolve_in_project, where
from koda.tools.schema import arguments, string

MAX_RESULTS = 200


class Glob:
    name = "Glob"
    description = (
        'Find files by glob pattern, e.g. "**/*.py" or "src/**/*.{ts,tsx}" (* stays within '
        "one directory, ** spans any). Returns project-relative paths, newest first. "
        "Ignored and build/cache directories are skipped."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["pattern"],
            pattern=string("Glob, relative to path."),
            path=string("Directory to search (default .)."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        place = args.get("path")
        suffix = f" in {one_line(place)}" if place else ""
        return f"Glob {one_line(args.get('pattern', ''))}{suffix}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx, args)

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        pattern = req_str(args, "pattern", allow_empty=False).strip()
        raw = opt_str(args, "path", ".") or "."
        root = project_root(ctx.project_root)
        base = resolve_in_project(root, raw)
        shown = display_path(root, base)
        if not base.is_dir():
            raise ToolError(f"Directory not found: {shown}")
        regex = glob_to_regex(pattern.removeprefix("./").lstrip("/"), braces=True)
        found: list[tuple[float, str]] = []
        rules = IgnoreRules.load(root)
        for entry in walk(root, base, rules, should_stop=lambda: ctx.cancel.is_cancelled):
            if entry.is_dir or not regex.fullmatch(entry.path.relative_to(base).as_posix()):
                continue
            try:
                mtime = os.stat(entry.path, follow_symlinks=False).st_mtime
            except OSError:
                continue
            found.append((mtime, entry.rel))
        if not found:
            return ToolResult(f"No files match {pattern!r} in {where(shown)}.")
        found.sort(key=lambda item: (-item[0], item[1]))
        cap = scaled(ctx, MAX_RESULTS)
        lines = [rel for _, rel in found[:cap]]
        if len(found) > cap:
            lines.append(f"[{len(found) - cap} more files not shown; narrow the pattern or path]")
        return ToolResult("\n".join(lines))
