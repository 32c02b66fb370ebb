"""Where events go: front ends implement EngineSink; tests use CollectingSink."""

from __future__ import annotations

from typing import Protocol, TypeVar

from koda.engine.events import EngineEvent

E = TypeVar("E")


class EngineSink(Protocol):
    def emit(self, event: EngineEvent) -> None: ...


class CollectingSink:
    """Keeps every event in order."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    def emit(self, event: EngineEvent) -> None:
        self.events.append(event)

    def of_type(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]

    def text(self) -> str:
        from koda.engine.events import TextDelta

        return "".join(e.text for e in self.events if isinstance(e, TextDelta))
