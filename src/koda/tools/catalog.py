"""The set of tools offered to the model, looked up by the names models actually send."""

from __future__ import annotations

from collections.abc import Iterable

from koda.providers.base import ToolDefinition
from koda.tools.ask_user import AskUser
from koda.tools.base import Tool
from koda.tools.bash import Bash, BashOutput, BashStop
from koda.tools.delete import Delete
from koda.tools.edit import Edit
from koda.tools.glob import Glob
from koda.tools.grep import Grep
from koda.tools.listing import List
from koda.tools.memory import MemoryRead, MemoryWrite
from koda.tools.read import Read
from koda.tools.recall import RecallContext
from koda.tools.skills import ActivateSkill, ListSkills
from koda.tools.todo import TodoWrite
from koda.tools.web_fetch import WebFetch
from koda.tools.web_search import WebSearch
from koda.tools.write import Write


def _normalise(name: str) -> str:
    # Models trained on other agents send "read_file", "READ", "list-files" and the like.
    key = name.strip().lower().replace("-", "_")
    for suffix in ("_files", "_file", "_tool"):
        key = key.removesuffix(suffix)
    return key.replace("_", "")


class ToolCatalog:
    """Tools in a fixed order; lookups forgive case, underscores and _file/_tool suffixes."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            key = _normalise(tool.name)
            if key in self._tools:
                raise ValueError(f"Two tools share the name {tool.name!r}.")
            self._tools[key] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(_normalise(name))

    def names(self) -> list[str]:
        return [tool.name for tool in self._tools.values()]

    def definitions(self) -> list[ToolDefinition]:
        return [ToolDefinition(t.name, t.description, t.parameters) for t in self._tools.values()]


def default_catalog() -> ToolCatalog:
    """Every built-in tool, in the order the model sees them."""
    return ToolCatalog(
        [
            Read(), Write(), Edit(), Delete(), List(), Glob(), Grep(),
            Bash(background=True), BashOutput(), BashStop(), WebFetch(), WebSearch(),
            MemoryRead(), MemoryWrite(), TodoWrite(), AskUser(), RecallContext(),
            ListSkills(), ActivateSkill(),
        ]
    )  # fmt: skip
