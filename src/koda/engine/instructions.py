"""Instruction files for the system prompt: the user's AGENTS.md, then the project's own.

They are read once, when the agent is built, and kept as text: the system prompt must stay the
same bytes for a whole session so that provider prompt caches keep hitting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# AGENTS.md is the open standard every peer reads; CLAUDE.md and KODA.md follow for projects
# written for Claude Code or for Koda itself.
PROJECT_FILES = ("AGENTS.md", "CLAUDE.md", "KODA.md")
USER_FILE = "AGENTS.md"
# Per file, as Codex caps its project docs: enough for real instructions, not a whole manual.
MAX_FILE_BYTES = 32 * 1024


@dataclass(frozen=True)
class InstructionFile:
    heading: str  # "AGENTS.md (project)"
    text: str  # what goes into the prompt, notes included


def find_instructions(project_root: Path, user_dir: Path) -> list[InstructionFile]:
    """The user's file first, then the project's in PROJECT_FILES order; missing ones left out.

    The project's files come last so that, where they disagree with the user's, the more
    specific instructions are the ones the model read most recently.
    """
    files: list[InstructionFile] = []
    seen: dict[Path, str] = {}
    user = _load(user_dir / USER_FILE, f"{USER_FILE} (user, all projects)", None, seen)
    if user is not None:
        files.append(user)
    root = Path(os.path.realpath(project_root))
    for name in PROJECT_FILES:
        found = _load(root / name, f"{name} (project)", root, seen)
        if found is not None:
            files.append(found)
    return files


def instructions_section(files: list[InstructionFile]) -> str:
    """The prompt text for `files`; empty when there are none."""
    if not files:
        return ""
    parts = [
        "# Instructions from the user and the project\n"
        "Follow these; where they conflict, the project's files win over the user's."
    ]
    parts += [f"## {f.heading}\n{f.text}" for f in files]
    return "\n\n".join(parts)


def load_instructions(project_root: Path, user_dir: Path) -> str:
    return instructions_section(find_instructions(project_root, user_dir))


def _load(
    path: Path, heading: str, confine: Path | None, seen: dict[Path, str]
) -> InstructionFile | None:
    if not os.path.lexists(path):
        return None
    real = Path(os.path.realpath(path))
    # A cloned repository could link CLAUDE.md to a private file (~/.ssh/id_ed25519) so that it
    # ends up in a request to the model's provider; only files inside the project are read.
    if confine is not None and not real.is_relative_to(confine):
        return InstructionFile(heading, "[not loaded: it links to a file outside the project]")
    if real in seen:  # CLAUDE.md as a symlink to AGENTS.md is a common way to share one file
        return InstructionFile(heading, f"[the same file as {seen[real]}, shown above]")
    if not os.path.isfile(real):  # a folder by that name, or a broken link
        return None
    try:
        with real.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        size = real.stat().st_size
    except OSError as exc:
        return InstructionFile(heading, f"[not loaded: {exc.strerror or exc}]")
    seen[real] = heading
    if b"\0" in data:
        return InstructionFile(heading, "[not loaded: it is not a text file]")
    text = _normalise(data[:MAX_FILE_BYTES].decode("utf-8", errors="replace"))
    if len(data) > MAX_FILE_BYTES:
        # Cut at a line end, so neither a line nor a multi-byte character is split.
        text = text.rsplit("\n", 1)[0] if "\n" in text else text
        text += (
            f"\n[truncated: the file has {size // 1024} KB; only its first "
            f"{MAX_FILE_BYTES // 1024} KB are loaded]"
        )
    return InstructionFile(heading, text) if text else None


def _normalise(text: str) -> str:
    # Same bytes whatever the editor saved: no BOM, \n line ends, no trailing blank lines.
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").strip()
