"""Plain records read from the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SessionRow:
    id: str
    title: str | None
    project_root: str
    agent: str
    mode: str
    provider: str | None
    model: str | None
    created_at: str
    accessed_at: str


@dataclass(frozen=True)
class SessionSummary:
    session: SessionRow
    message_count: int
    total_tokens: int


@dataclass(slots=True)  # not frozen: a resume builds thousands, and frozen init is slow
class MessageRow:
    id: int
    session_id: str
    role: str
    content: str
    thinking: str | None
    thinking_signature: str | None
    tool_calls: list[dict[str, Any]]
    tool_call_id: str | None
    tool_name: str | None
    tool_ok: bool | None
    full_output: str | None
    images: list[dict[str, str]]
    usage: dict[str, int]
    cost_usd: float | None
    agent: str | None
    created_at: str
    completed_at: str | None

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None


@dataclass(frozen=True)
class UsageTotals:
    prompt: int = 0
    completion: int = 0
    cache_read: int = 0
    cache_write: int = 0
    thinking: int = 0
    cost_usd: float | None = None
    priced_turns: int = 0
    unpriced_turns: int = 0
