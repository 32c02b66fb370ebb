"""Write: create or replace a whole file, atomically."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koda.tools.args import one_line, opt_bool, req_str
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import (
    check_parent_unmoved,
    display_path,
    fs_errors,
    open_parent,
    resolve_in_project,
)
from koda.tools.read import content_digest, last_seen
from koda.tools.schema import FILE_PATH, arguments, boolean, string

PREVIEW_LINES = 40
DIFF_CONTEXT = 3
_HUNK = re.compile(r"([-+])(\d+)")


def atomic_write(root: Path, path: Path, data: bytes) -> None:
    """Replace `path` (resolved, inside the project `root`) with `data`, so nobody ever sees a
    half-written file and no symlink swapped in meanwhile can lead the write outside."""
    with open_parent(root, path, create=True) as dir_fd:
        try:
            old = os.stat(path.name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        # Keep an overwritten script executable; a link swapped in is replaced, not followed.
        mode = stat.S_IMODE(old.st_mode) if old and stat.S_ISREG(old.st_mode) else None
        # Same directory, so the rename is on one filesystem and therefore atomic.
        tmp = _write_temp(dir_fd, data, mode)
        try:
            check_parent_unmoved(root, path, dir_fd)
            os.replace(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise


def _write_temp(dir_fd: int, data: bytes, mode: int | None) -> str:
    """A new temporary file in the directory `dir_fd` holding `data`; its name."""
    tmp = f".koda-{secrets.token_hex(6)}.tmp"
    # 0o666 lets the umask decide a new file's mode, as any editor would.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(tmp, flags, 0o666, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if mode is not None:
                os.fchmod(f.fileno(), mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    return tmp


def unified_diff(
    old: str, new: str, shown: str, *, created: bool = False, max_lines: int = PREVIEW_LINES
) -> str:
    """A unified diff for people (approval prompts, tool output), capped at `max_lines`."""
    a, b = old.splitlines(), new.splitlines()
    # Lines equal at both ends can only be context: leaving them out keeps difflib fast on a
    # huge file with a small change (seconds for 50 MB otherwise); hunk numbers are shifted back.
    head = _common_run(a, b)
    tail = _common_run(a[head:][::-1], b[head:][::-1])
    skip, keep = max(head - DIFF_CONTEXT, 0), max(tail - DIFF_CONTEXT, 0)
    lines = [
        _shift(line, skip)
        for line in difflib.unified_diff(
            a[skip : len(a) - keep],
            b[skip : len(b) - keep],
            "/dev/null" if created else f"a/{shown}",
            f"b/{shown}",
            lineterm="",
            n=DIFF_CONTEXT,
        )
    ]
    if not lines:
        return f"(no changes to {shown})"
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"[... {len(lines) - max_lines} more diff lines]"]
    return "\n".join(lines)


def _common_run(a: list[str], b: list[str]) -> int:
    """How many lines `a` and `b` share from their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _shift(line: str, skip: int) -> str:
    if not skip or not line.startswith("@@"):
        return line
    return _HUNK.sub(lambda m: f"{m[1]}{int(m[2]) + skip}", line)


class Write:
    name = "Write"
    description = (
        "Create a file, or replace a whole file you have read (overwrite: true replaces one "
        "you have not). Parent directories are created. To change part of a file, prefer Edit."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["path", "content"],
            path=string(FILE_PATH),
            content=string("The complete new file content."),
            overwrite=boolean("Replace an existing file even if you have not read it."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.LOCAL_MUTATION

    def summary(self, args: dict[str, Any]) -> str:
        return f"Write {one_line(args.get('path', ''))}"

    def preview(self, ctx: ToolContext, args: dict[str, Any]) -> str | None:
        """The change as a diff for an approval prompt; None if the call would fail."""
        try:
            plan = _plan(ctx, args)
        except ToolError:
            return None
        old = plan.old.decode("utf-8", errors="replace") if plan.old is not None else ""
        return unified_diff(old, plan.content, plan.shown, created=plan.old is None)

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        plan, size, digest = await asyncio.to_thread(self._run, ctx, args)
        # Recorded here, on the event loop: the store's connection is not shared with threads.
        if plan.old is None:
            ctx.file_tracker.record_created(plan.path)
        # The model knows what it wrote: a following Edit needs no Read first.
        ctx.file_tracker.record_read(plan.path, digest)
        verb = "Created" if plan.old is None else "Overwrote"
        return ToolResult(f"{verb} {plan.shown} ({size} bytes)")

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> tuple[_Plan, int, str]:
        plan = _plan(ctx, args)
        with fs_errors(plan.shown):
            data = plan.content.encode("utf-8")
            atomic_write(ctx.project_root, plan.path, data)
        return plan, len(data), content_digest(data)


@dataclass(frozen=True)
class _Plan:
    path: Path
    shown: str
    content: str
    old: bytes | None  # the file's bytes now; None when it does not exist yet


def _plan(ctx: ToolContext, args: dict[str, Any]) -> _Plan:
    raw = req_str(args, "path", allow_empty=False)
    content = req_str(args, "content")
    overwrite = opt_bool(args, "overwrite", False)
    path = resolve_in_project(ctx.project_root, raw)
    shown = display_path(ctx.project_root, path)
    if path.is_dir():
        raise ToolError(f"{shown} is a directory; give a file path to write.")
    with fs_errors(shown):
        old = path.read_bytes() if path.is_file() else None
    if old is None and path.exists():
        raise ToolError(f"{shown} is not a regular file (a pipe, socket or device).")
    if old is not None and not overwrite:
        seen = last_seen(ctx, path)
        if seen is None:
            raise ToolError(
                f"{shown} already exists and you have not read it. Read it first, or set "
                "overwrite to true to replace it anyway."
            )
        if seen != content_digest(old):
            raise ToolError(
                f"{shown} has changed since you last read it. Read it again, or set overwrite "
                "to true to replace it anyway."
            )
    return _Plan(path, shown, content, old)
