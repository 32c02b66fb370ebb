"""Write: create or replace a whole file, atomically."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from koda.tools.args import one_line, req_str
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import display_path, fs_errors, resolve_in_project
from koda.tools.schema import FILE_PATH, arguments, string

PREVIEW_LINES = 40


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so nobody ever sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    # Same directory, so os.replace is a rename on one filesystem and therefore atomic.
    tmp = path.with_name(f".koda-{secrets.token_hex(6)}.tmp")
    # 0o666 lets the umask decide a new file's mode, as any editor would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)  # keep an overwritten script executable
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def unified_diff(
    old: str, new: str, shown: str, *, created: bool = False, max_lines: int = PREVIEW_LINES
) -> str:
    """A unified diff for people (approval prompts, tool output), capped at `max_lines`."""
    lines = list(
        difflib.unified_diff(
            old.splitlines(),
            new.splitlines(),
            "/dev/null" if created else f"a/{shown}",
            f"b/{shown}",
            lineterm="",
        )
    )
    if not lines:
        return f"(no changes to {shown})"
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"[... {len(lines) - max_lines} more diff lines]"]
    return "\n".join(lines)


class Write:
    name = "Write"
    description = (
        "Create a file, or replace an existing file's whole content. Parent directories are "
        "created. To change part of an existing file, prefer Edit."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["path", "content"],
            path=string(FILE_PATH),
            content=string("The complete new file content."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.LOCAL_MUTATION

    def summary(self, args: dict[str, Any]) -> str:
        return f"Write {one_line(args.get('path', ''))}"

    def preview(self, ctx: ToolContext, args: dict[str, Any]) -> str | None:
        """The change as a diff for an approval prompt; None if the call would fail."""
        try:
            path, shown, content = _target(ctx, args)
            old = path.read_bytes().decode("utf-8", errors="replace") if path.exists() else None
        except (ToolError, OSError):
            return None
        return unified_diff(old or "", content, shown, created=old is None)

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        result, created = await asyncio.to_thread(self._run, ctx, args)
        # Recorded here, on the event loop: the store's connection is not shared with threads.
        if created is not None:
            ctx.file_tracker.record_created(created)
        return result

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> tuple[ToolResult, Path | None]:
        path, shown, content = _target(ctx, args)
        with fs_errors(shown):
            data = content.encode("utf-8")
            existed = path.exists()
            atomic_write(path, data)
        verb = "Overwrote" if existed else "Created"
        return ToolResult(f"{verb} {shown} ({len(data)} bytes)"), None if existed else path


def _target(ctx: ToolContext, args: dict[str, Any]) -> tuple[Path, str, str]:
    raw = req_str(args, "path", allow_empty=False)
    content = req_str(args, "content")
    path = resolve_in_project(ctx.project_root, raw)
    shown = display_path(ctx.project_root, path)
    if path.is_dir():
        raise ToolError(f"{shown} is a directory; give a file path to write.")
    return path, shown, content
