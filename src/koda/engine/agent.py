"""KodaAgent: what every session of one configuration shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from koda.config_file import FileSettings, load_settings
from koda.engine.instructions import load_instructions
from koda.engine.prompt import system_prompt
from koda.paths import config_dir
from koda.providers.base import ToolDefinition
from koda.skills import discover_skills
from koda.tools.catalog import ToolCatalog, default_catalog


@dataclass(frozen=True)
class KodaAgent:
    """Project root, tool catalog, system prompt and koda.toml settings; immutable, shareable."""

    project_root: Path
    catalog: ToolCatalog
    tool_definitions: tuple[ToolDefinition, ...]
    system_prompt: str
    settings: FileSettings = field(default_factory=FileSettings.empty)

    @classmethod
    def create(
        cls,
        project_root: Path,
        catalog: ToolCatalog | None = None,
        *,
        user_dir: Path | None = None,
        settings: FileSettings | None = None,
    ) -> KodaAgent:
        """Reads instruction files, skills and koda.toml once: they stay fixed for its sessions.

        `user_dir` holds the user's AGENTS.md, skills/ and koda.toml (default: Koda's config
        folder). Without `settings` they are loaded from the files; an invalid file raises
        ConfigFileError.
        """
        root = project_root.resolve()
        tools = catalog or default_catalog()
        user = user_dir if user_dir is not None else config_dir()
        if settings is None:
            settings = load_settings(root, user)
        # Skills are only offered when the model can activate them.
        skills = discover_skills(root, user).skills if tools.get("ActivateSkill") else []
        prompt = system_prompt(root, instructions=load_instructions(root, user), skills=skills)
        return cls(root, tools, tuple(tools.definitions()), prompt, settings)
