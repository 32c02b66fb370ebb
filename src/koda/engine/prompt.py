"""The system prompt. It stays byte-identical within a session so prompt caches hit."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

from koda.skills import Skill

BASE = """\
You are Koda, a coding agent working in the user's project from their terminal.

How to work:
- Read before you change: look at the relevant files with Read, Grep, Glob and List first.
- Make the smallest change that does the job, with Edit for existing files and Write for new ones.
- Run the project's own commands (tests, linters, builds) with Bash to check your work.
- Paths are relative to the project root; you cannot touch files outside it.
- If a tool result says an action was rejected or blocked, do not retry it unchanged: adapt or ask.
- When you are done, say briefly what you changed and what you checked. Be concise."""

# The skills list costs bytes in every request; past these, ListSkills has the rest.
MAX_PROMPT_SKILLS = 30
MAX_SKILL_DESCRIPTION = 200


def system_prompt(
    project_root: Path, *, instructions: str = "", skills: Sequence[Skill] = ()
) -> str:
    """The base prompt, the environment, the skills to offer and the instruction files' text."""
    parts = [
        BASE,
        f"Environment:\n- Project root: {project_root}\n"
        f"- Platform: {platform.system()} {platform.machine()}",
    ]
    if skills:
        parts.append(skills_section(skills))
    if instructions:
        parts.append(instructions)
    return "\n\n".join(parts)


def skills_section(skills: Sequence[Skill]) -> str:
    # Named up front, as peers do: a model rarely calls ListSkills just in case.
    lines = [
        "Skills (load one with ActivateSkill when the task matches its description):",
        *(f"- {s.name}: {_short(s.description)}" for s in skills[:MAX_PROMPT_SKILLS]),
    ]
    if len(skills) > MAX_PROMPT_SKILLS:
        lines.append(f"- ... and {len(skills) - MAX_PROMPT_SKILLS} more: see ListSkills.")
    return "\n".join(lines)


def _short(text: str) -> str:
    if len(text) <= MAX_SKILL_DESCRIPTION:
        return text
    return text[: MAX_SKILL_DESCRIPTION - 3].rstrip() + "..."
