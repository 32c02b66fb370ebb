"""Delete: remove a file, a symlink or a directory inside the project."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koda.tools.args import one_line, opt_bool
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import (
    display_path,
    fs_errors,
    open_parent,
    project_root,
    resolve_in_project,
)
from koda.tools.schema import arguments, boolean, string


@dataclass(frozen=True)
class _Target:
    path: Path  # resolved, except that a symlink in the last component is the link itself
    shown: str
    recursive: bool


class Delete:
    name = "Delete"
    description = (
        "Delete a file or directory in the project. A non-empty directory needs recursive: "
        "true. Deleting a symlink removes the link, not what it points to."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["path"],
            path=string("File or directory path, relative to the project root."),
            recursive=boolean("Delete a directory and everything in it (default false)."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.DESTRUCTIVE

    def owned_effect(self, ctx: ToolContext, args: dict[str, Any]) -> Effect:
        """A file this session created can go without approval: nothing of the user's is lost.

        Never raises: a call it cannot make sense of stays destructive.
        """
        try:
            target = _target(ctx, args)
            mode = os.lstat(target.path).st_mode
            owned = ctx.file_tracker.is_owned(target.path)
        except Exception:  # the engine would otherwise fall back to a milder effect
            return Effect.DESTRUCTIVE
        if owned and not stat.S_ISDIR(mode):
            return Effect.LOCAL_MUTATION
        return Effect.DESTRUCTIVE

    def summary(self, args: dict[str, Any]) -> str:
        recursive = " (recursive)" if args.get("recursive") in (True, "true") else ""
        return f"Delete {one_line(args.get('path', ''))}{recursive}"

    def preview(self, ctx: ToolContext, args: dict[str, Any]) -> str | None:
        """What would go, for an approval prompt; None if the call would fail."""
        try:
            target = _target(ctx, args)
            return _describe(target.path, target.shown)
        except (ToolError, OSError):
            return None

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx, args)

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        target = _target(ctx, args)
        with fs_errors(target.shown):
            what = _describe(target.path, target.shown)
            with open_parent(ctx.project_root, target.path) as dir_fd:
                _remove(dir_fd, target)
        return ToolResult(f"Deleted {what}")


def _target(ctx: ToolContext, args: dict[str, Any]) -> _Target:
    raw = args.get("path")
    recursive = opt_bool(args, "recursive", False)
    path = resolve_in_project(ctx.project_root, raw, keep_link=True)
    if path == project_root(ctx.project_root):
        raise ToolError("Refusing to delete the project root; delete what is inside it instead.")
    shown = display_path(ctx.project_root, path)
    if not os.path.lexists(path):
        raise ToolError(f"Path not found: {shown}")
    return _Target(path, shown, recursive)


def _remove(dir_fd: int, target: _Target) -> None:
    """Remove the entry named by `target` in the directory `dir_fd`, never following a link."""
    name = target.path.name
    mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    if not stat.S_ISDIR(mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    if target.recursive:
        shutil.rmtree(name, dir_fd=dir_fd)
        return
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        raise ToolError(
            f"{target.shown} is a directory that is not empty; set recursive to true to delete "
            "it and everything in it."
        ) from exc


def _describe(path: Path, shown: str) -> str:
    """The thing at `path` in a few words: what would be (or was) deleted."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return f"the symlink {shown} (it pointed to {os.readlink(path)}; that was left alone)"
    if not stat.S_ISDIR(info.st_mode):
        return f"{shown} ({info.st_size:,} bytes)"
    files = dirs = 0
    for _, subdirs, names, _ in os.fwalk(path):  # does not follow symlinks
        dirs += len(subdirs)
        files += len(names)
    if not files and not dirs:
        return f"the empty directory {shown}"
    return f"the directory {shown} ({files} file(s), {dirs} subdirectory(ies))"
