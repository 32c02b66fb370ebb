"""MemoryRead and MemoryWrite: short facts kept under "## Memory" in an instruction file.

Project memory goes to KODA.md, user memory to the user's AGENTS.md in Koda's config folder.
Both files are loaded into the system prompt of later sessions (engine.instructions), so what is
remembered there is what the next session knows. KODA.md rather than AGENTS.md or CLAUDE.md:
those two are shared with other agents and usually curated by people; notes Koda writes for
itself belong in Koda's own file, which stays a plain Markdown file the user can review and
commit. The current session's prompt is not changed (its cache would be lost): the model that
wrote a fact already has it in its history.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koda.paths import config_dir
from koda.tools.args import one_line, opt_str, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import fs_errors, resolve_in_project
from koda.tools.schema import arguments, string
from koda.tools.write import atomic_write

PROJECT_FILE = "KODA.md"
USER_FILE = "AGENTS.md"
SECTION = "## Memory"
MAX_ENTRY_CHARS = 1000
MAX_FILE_BYTES = 1024 * 1024
MAX_OUTPUT_CHARS = 20_000

_SECTION = re.compile(r"^##[ \t]+memory[ \t]*$", re.IGNORECASE)
_END = re.compile(r"^#{1,2}[ \t]")  # the next heading of the same or a higher level
_BULLET = re.compile(r"^\s*[-*](?:[ \t]+|$)")
_SCOPES = {"project": "project", "user": "user", "global": "user"}


@dataclass(frozen=True)
class MemoryFile:
    path: Path
    shown: str  # how the file is named to the model
    root: Path  # the folder writes are confined to (no link swapped in can lead out of it)
    in_project: bool


def project_memory(ctx: ToolContext) -> MemoryFile:
    # Through the project check, so a KODA.md linking outside the project is refused.
    path = resolve_in_project(ctx.project_root, PROJECT_FILE)
    return MemoryFile(path, PROJECT_FILE, ctx.project_root, True)


def user_memory(user_dir: Path | None) -> MemoryFile:
    folder = user_dir if user_dir is not None else config_dir()
    # Resolved, so a user's AGENTS.md linked into their dotfiles is written through, not replaced.
    path = Path(os.path.realpath(folder / USER_FILE))
    return MemoryFile(path, f"your {USER_FILE} in Koda's config folder", path.parent, False)


def memory_entries(text: str) -> list[str]:
    """The lines of the "## Memory" section, without surrounding blank lines."""
    lines = text.splitlines()
    span = _section(lines)
    if span is None:
        return []
    body = lines[span[0] + 1 : span[1]]
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    return body


def with_entry(text: str, entry: str) -> str:
    """`text` with `- entry` added at the end of its memory section (made if missing).

    Existing lines keep their bytes, line ends included; new lines use the file's line end.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    span = _section([line.rstrip("\r\n") for line in lines])
    bullet = f"- {entry}{newline}"
    if span is None:
        before = text.rstrip() + newline + newline if text.strip() else ""
        return f"{before}{SECTION}{newline}{newline}{bullet}"
    start, end = span
    last = end
    while last > start + 1 and not lines[last - 1].strip():
        last -= 1
    if not lines[last - 1].endswith(("\n", "\r")):
        lines[last - 1] += newline
    if last == start + 1:  # an empty section: a blank line under the heading, as Markdown does
        bullet = newline + bullet
    lines.insert(last, bullet)
    return "".join(lines)


def _section(lines: list[str]) -> tuple[int, int] | None:
    """Index of the "## Memory" heading and of the line that ends its section."""
    start = next((i for i, line in enumerate(lines) if _SECTION.match(line)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _END.match(lines[i])), len(lines))
    return start, end


def _read_text(file: MemoryFile) -> str | None:
    """The file's text, None if it does not exist; refuses files Koda should not rewrite."""
    with fs_errors(file.shown):
        if not file.path.exists():
            return None
        if not file.path.is_file():
            raise ToolError(f"{file.shown} is not a regular file.")
        if file.path.stat().st_size > MAX_FILE_BYTES:
            raise ToolError(f"{file.shown} is larger than 1 MB; edit it by hand.")
        data = file.path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(
            f"{file.shown} is not UTF-8 text, so Koda will not rewrite it; add the note by hand."
        ) from None


class MemoryRead:
    name = "MemoryRead"
    description = (
        "Show the memory kept for later sessions: the project's (KODA.md) and the user's "
        "(across projects)."
    )

    def __init__(self, user_dir: Path | None = None) -> None:
        self.user_dir = user_dir  # None: Koda's config folder, looked up when run
        self.parameters: dict[str, Any] = arguments([])

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return "MemoryRead"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx)

    def _run(self, ctx: ToolContext) -> ToolResult:
        parts = []
        for label, file in (
            ("Project memory", project_memory(ctx)),
            ("User memory", user_memory(self.user_dir)),
        ):
            text = _read_text(file)
            entries = memory_entries(text) if text is not None else []
            shown = "\n".join(entries) if entries else "(nothing remembered yet)"
            parts.append(f"{label} ({file.shown}, {SECTION}):\n{shown}")
        output = "\n\n".join(parts)
        cap = scaled(ctx, MAX_OUTPUT_CHARS)
        if len(output) > cap:
            output = output[:cap] + f"\n[... cut at {cap} characters]"
        return ToolResult(output)


class MemoryWrite:
    name = "MemoryWrite"
    description = (
        "Remember a short fact for later sessions (a convention, a command, a user preference). "
        "scope project (default) adds a bullet to KODA.md under '## Memory'; scope user keeps it "
        "for all of the user's projects. Do not store secrets."
    )

    def __init__(self, user_dir: Path | None = None) -> None:
        self.user_dir = user_dir  # None: Koda's config folder, looked up when run
        self.parameters: dict[str, Any] = arguments(
            ["content"],
            content=string("The fact, one line."),
            scope=string("project (default) or user.") | {"enum": ["project", "user"]},
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        # Either scope edits a file that steers every later session, so it is never read-only.
        return Effect.LOCAL_MUTATION

    def summary(self, args: dict[str, Any]) -> str:
        scope = args.get("scope") if args.get("scope") in _SCOPES else "project"
        return f"MemoryWrite ({_SCOPES[str(scope)]}): {one_line(args.get('content', ''))}"

    def preview(self, ctx: ToolContext, args: dict[str, Any]) -> str | None:
        try:
            file, entry = self._target(ctx, args)
        except ToolError:
            return None
        return f"Add to {file.shown} under {SECTION}:\n- {entry}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        result, created = await asyncio.to_thread(self._run, ctx, args)
        # On the event loop: the store's connection is not shared with threads.
        if created is not None:
            ctx.file_tracker.record_created(created)
        return result

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> tuple[ToolResult, Path | None]:
        file, entry = self._target(ctx, args)
        text = _read_text(file)
        known = {_key(line) for line in memory_entries(text or "")}
        if _key(entry) in known:
            return ToolResult(f"Already remembered in {file.shown}: {entry}"), None
        with fs_errors(file.shown):
            file.root.mkdir(parents=True, exist_ok=True)
            atomic_write(file.root, file.path, with_entry(text or "", entry).encode("utf-8"))
        # A KODA.md that Koda made is the session's own file, like any other it creates.
        created = file.path if text is None and file.in_project else None
        return ToolResult(f"Remembered in {file.shown} under {SECTION}: {entry}"), created

    def _target(self, ctx: ToolContext, args: dict[str, Any]) -> tuple[MemoryFile, str]:
        raw = req_str(args, "content", allow_empty=False)
        scope = opt_str(args, "scope", "project").strip().lower()
        if scope not in _SCOPES:
            raise ToolError(f"Argument 'scope' must be 'project' or 'user', not {scope!r}.")
        # One bullet is one line: newlines and runs of spaces collapse, a bullet mark is dropped.
        entry = " ".join(_BULLET.sub("", raw.strip(), count=1).split())
        if not entry:
            raise ToolError("Argument 'content' must not be empty.")
        if len(entry) > MAX_ENTRY_CHARS:
            raise ToolError(
                f"The fact has {len(entry)} characters; memory keeps short facts "
                f"(at most {MAX_ENTRY_CHARS}). Shorten it."
            )
        if _SCOPES[scope] == "user":
            return user_memory(self.user_dir), entry
        return project_memory(ctx), entry


def _key(line: str) -> str:
    return " ".join(_BULLET.sub("", line, count=1).split()).casefold()
