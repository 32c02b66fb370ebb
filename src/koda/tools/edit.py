"""Edit: replace exact text in a file, keeping its line endings and every other byte."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from koda.tools.args import one_line, opt_bool, req_str
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.paths import display_path, fs_errors, resolve_in_project
from koda.tools.read import content_digest, is_binary, last_seen
from koda.tools.schema import FILE_PATH, arguments, boolean, string
from koda.tools.write import atomic_write, unified_diff

RESULT_DIFF_LINES = 30
CLOSEST_CUTOFF = 0.6
CLOSEST_WINDOW = 12
# surrogateescape round-trips bytes that are not UTF-8, so editing one line of a
# Latin-1 file does not corrupt the rest of it.
_CODEC = ("utf-8", "surrogateescape")

# A line that stands for code the model left out ("// ... existing code ...", "# rest of the
# file unchanged"): written literally, it would delete that code. Only a comment, or a line
# with an ellipsis, whose whole text says so counts, so real code and comments pass.
_COMMENT = re.compile(r"^(?://+|#+|/\*+|\*+|<!--|--|;+|\{/\*)\s*(?P<body>.*?)\s*(?:\*+/\}?|-->)?$")
_ELLIPSIS = re.compile(r"\.\.\.|…")
_NOUN = (
    r"(?:code|file|function|method|class|implementation|logic|contents?|imports|methods|"
    r"functions|body|tests|components?|modules?|lines|props|fields|cases|jsx|markup|html|"
    r"styles|css|config|types|exports|handlers|routes|definitions|properties|variables)"
)
_STATUS = (
    r"(?:(?:is |are |remains? |stays? |goes |left )?"
    r"(?:unchanged|the same|as before|as is|here|goes here|omitted|not shown|untouched))"
)
_KIND = r"(?:other|more|remaining|same) " + _NOUN
_LEFT_OUT = re.compile(
    rf"(?:the )?(?:rest|remainder) of (?:the )?(?:\w+ )?{_NOUN}(?: {_STATUS})?|"
    rf"(?:existing|original|previous|unchanged) {_NOUN}(?: {_STATUS})?|"
    rf"(?:{_KIND}|{_NOUN}|(?:the )?rest|everything else) {_STATUS}|"
    r"unchanged|omitted|same as before|no changes?"
)
# "// Other methods" may head real code; with an ellipsis it stands for code left out.
_KIND_ONLY = re.compile(_KIND)


@dataclass(frozen=True)
class _Change:
    old: str
    new: str
    replace_all: bool


@dataclass(frozen=True)
class _Plan:
    path: Path
    shown: str
    before: str
    after: str
    count: int
    edits: int


class Edit:
    name = "Edit"
    description = (
        "Replace exact text in a file you have read. old_string must match exactly and be "
        "unique unless replace_all. For several changes use edits (in order, all or none). "
        "No placeholders like '// ... existing code' in new_string."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        one = {"type": "string"}
        self.parameters: dict[str, Any] = arguments(
            ["path"],
            path=string(FILE_PATH),
            old_string=string("Exact text to replace."),
            new_string=string("Replacement text."),
            replace_all=boolean("Replace every occurrence."),
            edits={
                "type": "array",
                "description": "Several changes at once.",
                "items": {
                    "type": "object",
                    "properties": {
                        "old_string": one,
                        "new_string": dict(one),
                        "replace_all": {"type": "boolean"},
                    },
                    "required": ["old_string", "new_string"],
                },
            },
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
        result, path, digest = await asyncio.to_thread(self._run, ctx, args)
        # The model saw the change: a follow-up edit needs no new Read.
        ctx.file_tracker.record_read(path, digest)
        return result

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> tuple[ToolResult, Path, str]:
        plan = _plan(ctx, args)
        data = plan.after.encode(*_CODEC)
        with fs_errors(plan.shown):
            atomic_write(ctx.project_root, plan.path, data)
        diff = unified_diff(plan.before, plan.after, plan.shown, max_lines=RESULT_DIFF_LINES)
        edits = f" in {plan.edits} edits" if plan.edits > 1 else ""
        result = ToolResult(
            f"Edited {plan.shown}: replaced {plan.count} occurrence(s){edits}\n{diff}"
        )
        return result, plan.path, content_digest(data)


def _plan(ctx: ToolContext, args: dict[str, Any]) -> _Plan:
    """Every change applied in memory, in order; any failure raises before a byte is written."""
    raw = req_str(args, "path", allow_empty=False)
    changes = _changes(args)
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
    seen = last_seen(ctx, path)
    if seen is None:
        raise ToolError(f"Read {shown} before editing it: Edit changes only files you have read.")
    if seen != content_digest(data):
        raise ToolError(
            f"{shown} has changed since you last read it (a command, another tool or a person "
            "changed it). Read it again, then edit."
        )
    before = text = data.decode(*_CODEC)
    total = 0
    for n, change in enumerate(changes, start=1):
        try:
            text, count = _apply(text, change, shown)
        except ToolError as exc:
            if len(changes) == 1:
                raise
            applied = f" (line numbers count edits 1-{n - 1} as applied)" if n > 1 else ""
            raise ToolError(
                f"Edit {n} of {len(changes)} failed, so no edit was made{applied}: {exc}"
            ) from None
        total += count
    return _Plan(path, shown, before, text, total, len(changes))


def _changes(args: dict[str, Any]) -> list[_Change]:
    """The replacements asked for: `edits`, or the single old_string/new_string pair."""
    edits = args.get("edits")
    single = any(args.get(k) not in (None, "") for k in ("old_string", "new_string"))
    if edits is None or (edits == [] and single):
        return [_change(args)]
    if single:
        raise ToolError("Give either old_string/new_string or edits, not both.")
    if isinstance(edits, str):  # some models send the list as JSON text
        with contextlib.suppress(ValueError):
            edits = json.loads(edits)
    if not isinstance(edits, list) or not edits:
        raise ToolError(
            "Argument 'edits' must be a non-empty list of objects with old_string and new_string."
        )
    changes = []
    for n, item in enumerate(edits, start=1):
        if not isinstance(item, dict):
            raise ToolError(f"edits[{n}] must be an object with old_string and new_string.")
        try:
            changes.append(_change(item))
        except ToolError as exc:
            raise ToolError(f"edits[{n}]: {exc}") from None
    return changes


def _change(args: dict[str, Any]) -> _Change:
    old = req_str(args, "old_string")
    new = req_str(args, "new_string")
    replace_all = opt_bool(args, "replace_all", False)
    if not old:
        raise ToolError("old_string is empty; to create or replace a whole file, use Write.")
    if old == new:
        raise ToolError("old_string and new_string are identical; there is nothing to change.")
    placeholder = find_placeholder(old, new)
    if placeholder is not None:
        raise ToolError(
            f"new_string contains the placeholder {placeholder!r}, which is not in old_string. "
            "Edit writes new_string literally, so that line would replace real code. Give the "
            "complete text, or choose an old_string that leaves the unchanged code out."
        )
    return _Change(old, new, replace_all)


def find_placeholder(old: str, new: str) -> str | None:
    """A line of `new` that stands for left-out code and is not already in `old`."""
    kept = {line.strip() for line in old.splitlines()}
    for line in new.splitlines():
        stripped = line.strip()
        if stripped in kept:
            continue
        comment = _COMMENT.match(stripped)
        text = comment.group("body") if comment else stripped
        if not (comment or _ELLIPSIS.search(text)):
            continue  # plain code
        ellipsis = _ELLIPSIS.search(text) is not None
        words = " ".join(_ELLIPSIS.sub(" ", text).lower().strip(" .:()[]-").split())
        if _LEFT_OUT.fullmatch(words) or (ellipsis and _KIND_ONLY.fullmatch(words)):
            return stripped
    return None


def _apply(text: str, change: _Change, shown: str) -> tuple[str, int]:
    old, new = _match_endings(text, change.old, change.new)
    count = text.count(old)
    if count == 0:
        raise ToolError(_not_found(text, old, shown))
    if count > 1 and not change.replace_all:
        lines = ", ".join(str(n) for n in _match_lines(text, old))
        raise ToolError(
            f"old_string occurs {count} times in {shown} (lines {lines}). Include more "
            "surrounding text to make it unique, or set replace_all to true."
        )
    if change.replace_all:
        return text.replace(old, new), count
    return text.replace(old, new, 1), 1


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
