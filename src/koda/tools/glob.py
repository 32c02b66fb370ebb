"""Glob: find project files by name pattern, most recently changed first."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any, Literal

from koda.tools import ripgrep
from koda.tools.args import one_line, opt_str, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.ignore import dir_prefix, glob_to_regex, path_key, printable
from koda.tools.paths import display_path, project_root, resolve_in_project, where
from koda.tools.ripgrep import Ripgrep
from koda.tools.schema import arguments, string

MAX_RESULTS = 200


class Glob:
    name = "Glob"
    description = (
        'Find files by glob pattern, e.g. "**/*.py" or "src/**/*.{ts,tsx}" (* stays within '
        "one directory, ** spans any). Returns project-relative paths, newest first. "
        "Ignored and build/cache directories are skipped."
    )

    def __init__(self, rg: Ripgrep | Literal["auto"] | None = "auto") -> None:
        """`rg`: the ripgrep to list files with; "auto" finds one, None never uses it."""
        self._rg = rg
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
        try:
            regex = glob_to_regex(pattern.removeprefix("./").lstrip("/"))
        except re.error as exc:
            raise ToolError(f"Invalid glob {pattern!r}: {exc}.") from exc
        prefix = dir_prefix(root, base)
        rg = ripgrep.find() if self._rg == "auto" else self._rg
        found: list[tuple[float, str]] = []
        for rel in ripgrep.files(rg, root, base, should_stop=lambda: ctx.cancel.is_cancelled):
            if not regex.fullmatch(rel[len(prefix) :]):
                continue
            try:
                mtime = os.stat(root / rel, follow_symlinks=False).st_mtime
            except OSError:
                continue
            found.append((mtime, rel))
        if not found:
            return ToolResult(f"No files match {pattern!r} in {where(shown)}.")
        found.sort(key=lambda item: (-item[0], path_key(item[1])))
        cap = scaled(ctx, MAX_RESULTS)
        lines = [printable(rel) for _, rel in found[:cap]]
        if len(found) > cap:
            lines.append(f"[{len(found) - cap} more files not shown; narrow the pattern or path]")
        return ToolResult("\n".join(lines))
