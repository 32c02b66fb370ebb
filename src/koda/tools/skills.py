"""ListSkills and ActivateSkill: find a skill's instructions and load them into the turn."""

from __future__ import annotations

import asyncio
import difflib
from pathlib import Path
from typing import Any

from koda.paths import config_dir
from koda.skills import Skill, SkillScan, discover_skills
from koda.tools.args import one_line, opt_str, req_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.schema import arguments, string

# While a skill limits the tools, these stay usable: they change no file, and without the
# skill tools the model could never switch to another skill (which lifts or changes the limit).
ALWAYS_AVAILABLE = ("ActivateSkill", "ListSkills", "TodoWrite", "AskUser")
MAX_LISTED = 100
MAX_BODY_CHARS = 40_000
MAX_NOTE_CHARS = 300


class _SkillTool:
    def __init__(self, user_dir: Path | None = None) -> None:
        self.user_dir = user_dir  # None: Koda's config folder, looked up when run

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def scan(self, ctx: ToolContext) -> SkillScan:
        user = self.user_dir if self.user_dir is not None else config_dir()
        return discover_skills(ctx.project_root, user)


class ListSkills(_SkillTool):
    name = "ListSkills"
    description = (
        "List the skills (instructions for particular tasks) with their descriptions; query "
        "filters by words in name or description. Load one with ActivateSkill."
    )

    def __init__(self, user_dir: Path | None = None) -> None:
        super().__init__(user_dir)
        self.parameters: dict[str, Any] = arguments(
            [], query=string("Words to look for (optional).")
        )

    def summary(self, args: dict[str, Any]) -> str:
        query = args.get("query")
        return f"ListSkills: {one_line(query)}" if query else "ListSkills"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        query = opt_str(args, "query", "")
        scan = await asyncio.to_thread(self.scan, ctx)
        words = query.casefold().split()
        matches = [s for s in scan.skills if all(w in _haystack(s) for w in words)]
        cap = scaled(ctx, MAX_LISTED)
        if not matches:
            lines = [f"No skills match {query!r}." if words else "No skills found."]
        else:
            lines = [f"{len(matches)} skill{'' if len(matches) == 1 else 's'}:"]
            lines += [_line(s) for s in matches[:cap]]
            if len(matches) > cap:
                lines.append(f"[... {len(matches) - cap} more; narrow the query]")
        if scan.notes:
            lines += ["", "Skipped:", *(f"- {one_line(n, MAX_NOTE_CHARS)}" for n in scan.notes)]
        return ToolResult("\n".join(lines))


class ActivateSkill(_SkillTool):
    name = "ActivateSkill"
    description = (
        "Load a skill's instructions by name and follow them for the current task. A skill may "
        "limit the tools you can use while it is active."
    )

    def __init__(self, user_dir: Path | None = None) -> None:
        super().__init__(user_dir)
        self.parameters: dict[str, Any] = arguments(["name"], name=string("The skill's name."))

    def summary(self, args: dict[str, Any]) -> str:
        return f"ActivateSkill: {one_line(args.get('name', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        name = req_str(args, "name", allow_empty=False)
        scan = await asyncio.to_thread(self.scan, ctx)
        skill = scan.find(name)
        if skill is None:
            raise ToolError(_unknown(name, scan))
        body = skill.body
        cap = scaled(ctx, MAX_BODY_CHARS)
        if len(body) > cap:
            body = body[:cap] + f"\n[... the skill's instructions are cut at {cap} characters]"
        lines = [f"Skill {skill.name} ({skill.source}) is active. Its instructions:", "", body]
        if skill.source == "project":
            folder = skill.location.rsplit("/", 1)[0]
            lines += ["", f"(Files the instructions mention are relative to {folder}/.)"]
        # A skill without a limit lifts the previous skill's: the engine reads None as "all".
        allowed: list[str] | None = None
        if skill.allowed_tools is not None:
            extra = [t for t in ALWAYS_AVAILABLE if t not in skill.allowed_tools]
            allowed = [*skill.allowed_tools, *extra]
            lines += [
                "",
                f"While it is active you can use only: {', '.join(skill.allowed_tools)} "
                "(and the skill tools, TodoWrite and AskUser).",
            ]
        return ToolResult("\n".join(lines), meta={"allowed_tools": allowed})


def _haystack(skill: Skill) -> str:
    return f"{skill.name} {skill.description}".casefold()


def _line(skill: Skill) -> str:
    where = "" if skill.source == "built-in" else f" [{skill.source}: {skill.location}]"
    return f"- {skill.name}: {skill.description}{where}"


def _unknown(name: str, scan: SkillScan) -> str:
    names = [s.name for s in scan.skills]
    if not names:
        return f"No skill named {name!r}: no skills are installed."
    by_key = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.strip().lower(), list(by_key), n=1)
    hint = f" Did you mean {by_key[close[0]]}?" if close else ""
    return f"No skill named {name!r}.{hint} Available: {', '.join(names)}."
