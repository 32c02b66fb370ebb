"""KodaAgent: what every session of one configuration shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from koda.engine.prompt import system_prompt
from koda.providers.base import ToolDefinition
from koda.tools.catalog import ToolCatalog, default_catalog


@dataclass(frozen=True)
class KodaAgent:
    """Project root, tool catalog and definitions, system prompt. Immutable and shareable."""

    project_root: Path
    catalog: ToolCatalog
    tool_definitions: tuple[ToolDefinition, ...]
    system_prompt: str

    @classmethod
    def create(cls, project_root: Path, catalog: ToolCatalog | None = None) -> KodaAgent:
        root = project_root.resolve()
        tools = catalog or default_catalog()
        return cls(root, tools, tuple(tools.definitions()), system_prompt(root))
