"""List: the entries of a project directory, minus build output and ignored files."""

from __future__ import annotations

import asyncio
from typing import Any

from koda.tools.args import one_line, opt_bool, opt_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.ignore import printable, walk
from koda.tools.paths import display_path, project_root, resolve_in_project
from koda.tools.schema import arguments, boolean, string

MAX_ENTRIES = 500


class List:
    name = "List"
    description = (
        "List a project directory; paths are relative to the project root and directories "
        "end with /. Ignored and build/cache directories are left out. Set recursive to "
        "include subdirectories."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            [],
            path=string("Directory, relative to the project root (default .)."),
            recursive=boolean("Include subdirectories (default false)."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"List {one_line(args.get('path') or '.')}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx, args)

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        raw = opt_str(args, "path", ".") or "."
        recursive = opt_bool(args, "recursive", False)
        root = project_root(ctx.project_root)
        path = resolve_in_project(root, raw)
        shown = display_path(root, path)
        if not path.exists():
            raise ToolError(f"Directory not found: {shown}")
        if not path.is_dir():
            raise ToolError(f"{shown} is a file, not a directory; use Read to see its content.")
        cap = scaled(ctx, MAX_ENTRIES)
        shown_entries: list[str] = []
        hidden = 0
        entries = walk(root, path, recursive=recursive, should_stop=lambda: ctx.cancel.is_cancelled)
        for entry in entries:
            if len(shown_entries) >= cap:
                hidden += 1
                continue
            # Project-relative, like Glob and Grep, so any line can be passed straight to Read.
            shown_entries.append(printable(entry.rel) + ("/" if entry.is_dir else ""))
        if not shown_entries:
            return ToolResult(f"{shown} is empty (or holds only ignored entries).")
        lines = list(shown_entries)
        if hidden:
            lines.append(f"[{hidden} more entries not shown]")
        return ToolResult("\n".join(lines))
