"""Finding skills: the project's folders, the user's, then those shipped with Koda.

A name found earlier wins, so the project overrides the user, who overrides the built-ins.
A file that cannot be used is skipped with a note; discovery itself never fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from koda.skills.skill import Skill, SkillError, Source, parse_skill

# Koda's own folder first, then the cross-tool one, then Claude Code's.
PROJECT_DIRS = (".koda/skills", ".agents/skills", ".claude/skills")
SKILL_FILE = "SKILL.md"
MAX_SKILL_BYTES = 256 * 1024
MAX_PER_FOLDER = 200


@dataclass(frozen=True)
class SkillScan:
    skills: list[Skill]  # one per name, sorted by name
    notes: list[str]  # files that were skipped, and why

    def find(self, name: str) -> Skill | None:
        wanted = name.strip().lower()
        return next((s for s in self.skills if s.name.lower() == wanted), None)


def discover_skills(project_root: Path, user_dir: Path) -> SkillScan:
    """Every usable skill for this project and user; `user_dir` holds the user's `skills/`."""
    found = _Found()
    root = Path(os.path.realpath(project_root))
    for rel in PROJECT_DIRS:
        for folder in _folders(root / rel, rel, found.notes):
            shown = f"{rel}/{folder.name}/{SKILL_FILE}"
            text = _read_project_file(folder / SKILL_FILE, root, shown, found.notes)
            found.add(text, folder.name, "project", shown, group=rel)
    for folder in _folders(user_dir / "skills", "your skills folder", found.notes):
        shown = f"{folder.name}/{SKILL_FILE} in your skills folder"
        text = _read(folder / SKILL_FILE, shown, found.notes)
        found.add(text, folder.name, "user", shown, group="user")
    for entry in _builtin_folders():
        with_file = entry.joinpath(SKILL_FILE)
        text = with_file.read_text(encoding="utf-8") if with_file.is_file() else None
        found.add(text, entry.name, "built-in", "built-in", group="built-in")
    skills = sorted((skill for skill, _ in found.skills.values()), key=lambda s: s.name.lower())
    return SkillScan(skills, found.notes)


class _Found:
    """Skills by lower-case name, first one kept, with the folder group each came from."""

    def __init__(self) -> None:
        self.skills: dict[str, tuple[Skill, str]] = {}
        self.notes: list[str] = []

    def add(self, text: str | None, folder: str, source: Source, shown: str, group: str) -> None:
        if text is None:
            return
        try:
            skill = parse_skill(text, folder=folder, source=source, location=shown)
        except SkillError as exc:
            self.notes.append(f"{shown}: skipped, {exc}")
            return
        key = skill.name.lower()
        if key not in self.skills:
            self.skills[key] = (skill, group)
        elif self.skills[key][1] == group:
            # Overriding across folders is the point; a clash inside one folder is a mistake.
            earlier = self.skills[key][0].location
            self.notes.append(f"{shown}: skipped, {earlier} already defines '{skill.name}'")


def _folders(base: Path, shown: str, notes: list[str]) -> list[Path]:
    """Subfolders holding a SKILL.md, in name order, at most MAX_PER_FOLDER of them."""
    try:
        children = sorted(base.iterdir())
    except OSError:  # missing, not a folder, or unreadable: no skills there
        return []
    # os.path checks never raise; a SKILL.md that is there but unusable gets a note when read.
    entries = [e for e in children if os.path.isdir(e) and os.path.lexists(e / SKILL_FILE)]
    if len(entries) > MAX_PER_FOLDER:
        notes.append(f"{shown}: only the first {MAX_PER_FOLDER} of {len(entries)} skills are read")
    return entries[:MAX_PER_FOLDER]


def _read_project_file(path: Path, root: Path, shown: str, notes: list[str]) -> str | None:
    # A repository could link a "skill" to a private file (~/.ssh/...) for the model to send
    # away; only files that really lie inside the project are read.
    if not Path(os.path.realpath(path)).is_relative_to(root):
        notes.append(f"{shown}: skipped, it links to a file outside the project")
        return None
    return _read(path, shown, notes)


def _read(path: Path, shown: str, notes: list[str]) -> str | None:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SKILL_BYTES + 1)
    except OSError as exc:
        notes.append(f"{shown}: skipped, it cannot be read ({exc.strerror or exc})")
        return None
    if len(data) > MAX_SKILL_BYTES:
        notes.append(f"{shown}: skipped, it is larger than {MAX_SKILL_BYTES // 1024} KB")
        return None
    if b"\0" in data:
        notes.append(f"{shown}: skipped, it is not a text file")
        return None
    return data.decode("utf-8", errors="replace")


def _builtin_folders() -> Iterable[Traversable]:
    base = resources.files("koda.skills").joinpath("builtin")
    return sorted((e for e in base.iterdir() if e.is_dir()), key=lambda e: e.name)
