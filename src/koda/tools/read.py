"""Read: a text file with line numbers, a window at a time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, BinaryIO

from koda.tools.args import one_line, opt_int, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import display_path, fs_errors, resolve_in_project
from koda.tools.schema import FILE_PATH, arguments, integer, string

MAX_LINES = 2000
MAX_BYTES = 100_000
SNIFF_BYTES = 8192


def is_binary(head: bytes) -> bool:
    """Git's heuristic: a NUL byte near the start means the file is not text."""
    return b"\0" in head[:SNIFF_BYTES]


@dataclass
class _Window:
    lines: list[str]
    total: int
    cut_line: bool  # the first line alone was over the byte budget and was shortened


class Read:
    name = "Read"
    description = (
        "Read a text file from the project. Output has line numbers (for reference only; "
        "they are not part of the file). Long files are cut off with a note: use offset "
        "and limit to read further."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["path"],
            path=string(FILE_PATH),
            offset=integer("First line to read (1-based)."),
            limit=integer("Number of lines to read."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"Read {one_line(args.get('path', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx, args)

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        raw = req_str(args, "path", allow_empty=False)
        max_lines = scaled(ctx, MAX_LINES)
        offset = opt_int(args, "offset", 1, min=1)
        limit = opt_int(args, "limit", max_lines, min=1)
        path = resolve_in_project(ctx.project_root, raw)
        shown = display_path(ctx.project_root, path)
        if not path.exists():
            raise ToolError(f"File not found: {shown}")
        if path.is_dir():
            raise ToolError(f"{shown} is a directory; use List to see what it contains.")
        if not path.is_file():
            # Opening a FIFO or device could block forever or never end.
            raise ToolError(f"{shown} is not a regular file (a pipe, socket or device).")
        with fs_errors(shown), path.open("rb") as f:
            if is_binary(f.read(SNIFF_BYTES)):
                raise ToolError(
                    f"{shown} is a binary file (it contains NUL bytes); Read only shows text."
                )
            f.seek(0)
            window = _read_window(f, offset, min(limit, max_lines), scaled(ctx, MAX_BYTES))
        return ToolResult(_render(shown, offset, window))


def _read_window(f: BinaryIO, offset: int, count: int, max_bytes: int) -> _Window:
    """Lines offset..offset+count-1, stopping early at the byte budget; counts all lines."""
    lines: list[str] = []
    used, total, full, cut_line = 0, 0, False, False
    for total, raw in enumerate(f, start=1):
        if total < offset or full:
            continue
        text = raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
        size = len(text.encode()) + 8  # 8: the line-number prefix
        if used + size > max_bytes:
            if not lines:
                text = text.encode()[:max_bytes].decode("utf-8", errors="ignore")
                lines.append(text)
                cut_line = True
            full = True
            continue
        lines.append(text)
        used += size
        full = len(lines) >= count
    return _Window(lines, total, cut_line)


def _render(shown: str, offset: int, window: _Window) -> str:
    if window.total == 0:
        return f"{shown} is empty."
    if offset > window.total:
        raise ToolError(f"{shown} has {window.total} lines; offset {offset} is past the end.")
    body = "\n".join(f"{n:>6}\t{line}" for n, line in enumerate(window.lines, start=offset))
    last = offset + len(window.lines) - 1
    notes = []
    if window.cut_line:
        notes.append(
            f"[Line {offset} is longer than the output limit and was cut off; "
            "use Grep or Bash to inspect the rest of it.]"
        )
    if last < window.total:
        notes.append(
            f"[Showing lines {offset}-{last} of {window.total}. "
            f"Use offset={last + 1} to read more.]"
        )
    return "\n".join([body, *notes])
