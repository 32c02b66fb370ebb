"""Edit: replace exact text in a file, keeping its line endings and every other byte."""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koda.tools.args import one_line, opt_bool, req_str
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import display_path, fs_errors, resolve_in_project
from koda.tools.read import is_binary
from koda.tools.schema import FILE_PATH, arguments, boolean, string
from koda.tools.write import atomic_write, unified_diff

RESULT_DIFF_LINES = 30
CLOSEST_CUTOFF = 0.6
CLOSEST_WINDOW = 12
# surrogateescape round-trips bytes that are not UTF-8, so editing one line of a
# Latin-1 file does not corrupt the rest of it.
_CODEC = ("utf-8", "surrogateescape")


@dataclass(frozen=True)
class _Plan:
    path: Path
    shown: str
    before: str
    after: str
    count: int


class Edit:
    name = "Edit"
    description = (
        "Replace exact text in a file. old_string must match the file exactly, including "
        "indentation, and must be unique unless replace_all is true; include surrounding "
        "lines to make it unique. Read the file first."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["path", "old_string", "new_string"],
            path=string(FILE_PATH),
            old_string=string("Exact text to replace."),
            new_string=string("Replacement text."),
            replace_all=boolean("Replace every occurrence (default false)."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.LOCAL_MUTATION

    def summary(self, args: dict[str, Any]) -> str:
        return f"Edit {one_line(args.get('path', ''))}"

    def preview(self, ctx: ToolContext, args: dict[str, Any]) -> str | None:
        """The change as a diff for an approval prompt; None if the edit would fail."""
        try:
            plan = _plan(ctx, args)
        except ToolError:
            return None
        return unified_diff(plan.before, plan.after, plan.shown)

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx, args)

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        plan = _plan(ctx, args)
        with fs_errors(plan.shown):
            atomic_write(plan.path, plan.after.encode(*_CODEC))
        diff = unified_diff(plan.before, plan.after, plan.shown, max_lines=RESULT_DIFF_LINES)
        return ToolResult(f"Edited {plan.shown}: replaced {plan.count} occurrence(s)\n{diff}")


def _plan(ctx: ToolContext, args: dict[str, Any]) -> _Plan:
    raw = req_str(args, "path", allow_empty=False)
    old = req_str(args, "old_string")
    new = req_str(args, "new_string")
    replace_all = opt_bool(args, "replace_all", False)
    if not old:
        raise ToolError("old_string is empty; to create or replace a whole file, use Write.")
    if old == new:
        raise ToolError("old_string and new_string are identical; there is nothing to change.")
    path = resolve_in_project(ctx.project_root, raw)
    shown = display_path(ctx.project_root, path)
    if not path.exists():
        raise ToolError(f"File not found: {shown}")
    if not path.is_file():
        raise ToolError(f"{shown} is not a regular file; Edit changes text files only.")
    with fs_errors(shown):
        data = path.read_bytes()
    if is_binary(data):
        raise ToolError(
            f"{shown} is a binary file (it contains NUL bytes); Edit only changes text."
        )
    text = data.decode(*_CODEC)
    old, new = _match_endings(text, old, new)
    count = text.count(old)
    if count == 0:
        raise ToolError(_not_found(text, old, shown))
    if count > 1 and not replace_all:
        lines = ", ".join(str(n) for n in _match_lines(text, old))
        raise ToolError(
            f"old_string occurs {count} times in {shown} (lines {lines}). Include more "
            "surrounding text to make it unique, or set replace_all to true."
        )
    after = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    return _Plan(path, shown, text, after, count)


def _match_endings(text: str, old: str, new: str) -> tuple[str, str]:
    """Fit the model's strings to the file's line endings when they do not match as sent.

    Models almost always send LF; writing LF into a CRLF file would leave mixed endings.
    """
    crlf = text.count("\r\n")
    ending = "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"
    new = new.replace("\r\n", "\n").replace("\n", ending)
    if old in text:
        return old, new
    return old.replace("\r\n", "\n").replace("\n", ending), new


def _match_lines(text: str, old: str) -> list[int]:
    lines, start = [], text.find(old)
    while start >= 0:
        lines.append(text.count("\n", 0, start) + 1)
        start = text.find(old, start + len(old))
    return lines


def _not_found(text: str, old: str, shown: str) -> str:
    """Say the text is missing and show where something like it is, so the retry can succeed."""
    message = f"old_string was not found in {shown}."
    file_lines = [line.removesuffix("\r") for line in text.split("\n")]
    wanted = [line.removesuffix("\r") for line in old.split("\n")]
    # Blank lines say nothing about where the text is, so the first non-blank line is the key.
    lead = next((i for i, line in enumerate(wanted) if line.strip()), 0)
    ranked = _closest(file_lines, wanted[lead].strip())
    if not ranked:
        return f"{message} No similar lines were found; Read the file to see its current content."
    first = max(ranked[0] - lead, 0)
    end = min(first + min(len(wanted), CLOSEST_WINDOW), len(file_lines))
    window = "\n".join(f"{n + 1:>6}\t{file_lines[n]}" for n in range(first, end))
    parts = [
        message,
        f"The closest match is at line {ranked[0] + 1} (old_string must match exactly, "
        "including whitespace and indentation):",
        window,
    ]
    if len(ranked) > 1:
        parts.append("Other similar lines: " + ", ".join(str(n + 1) for n in ranked[1:]) + ".")
    return "\n".join(parts)


def _closest(lines: list[str], key: str, limit: int = 3) -> list[int]:
    """Indexes of the lines most similar to `key`, best first."""
    if not key:
        return []
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(key)
    scored = []
    for i, line in enumerate(lines):
        matcher.set_seq1(line.strip())
        # The cheap upper bounds skip most lines before the expensive ratio.
        if (
            matcher.real_quick_ratio() >= CLOSEST_CUTOFF
            and matcher.quick_ratio() >= CLOSEST_CUTOFF
            and (score := matcher.ratio()) >= CLOSEST_CUTOFF
        ):
            scored.append((-score, i))
    return [i for _, i in sorted(scored)[:limit]]
