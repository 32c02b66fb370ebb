"""Engine events: everything a front end learns about a turn arrives as one of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from koda.engine.tagged import Tagged, decode, registry

TurnEndKind = Literal["complete", "cancelled", "error"]


@dataclass(frozen=True)
class TurnEndReason:
    kind: TurnEndKind
    message: str | None = None


@dataclass(frozen=True)
class TurnStart(Tagged):
    TYPE = "turn_start"
    turn_id: str


@dataclass(frozen=True)
class TurnEnd(Tagged):
    TYPE = "turn_end"
    turn_id: str
    reason: TurnEndReason

    @staticmethod
    def decode_fields(kw: dict[str, Any]) -> dict[str, Any]:
        if "reason" not in kw:
            return kw  # the constructor reports the missing field
        reason = kw["reason"]
        if (
            not isinstance(reason, dict)
            or reason.get("kind") not in TurnEndKind.__args__  # type: ignore[attr-defined]
            or not isinstance(reason.get("message"), str | None)
        ):
            raise ValueError(f"turn_end has an invalid reason: {reason!r}")
        kw["reason"] = TurnEndReason(kind=reason["kind"], message=reason.get("message"))
        return kw


@dataclass(frozen=True)
class TextDelta(Tagged):
    TYPE = "text_delta"
    text: str


@dataclass(frozen=True)
class TextDone(Tagged):
    TYPE = "text_done"


@dataclass(frozen=True)
class ReplyDiscarded(Tagged):
    """The text and thinking streamed since the last TextDone belong to a reply that broke off;
    it was thrown away and the request is sent again."""

    TYPE = "reply_discarded"
    reason: str


@dataclass(frozen=True)
class ThinkingStart(Tagged):
    TYPE = "thinking_start"


@dataclass(frozen=True)
class ThinkingDelta(Tagged):
    TYPE = "thinking_delta"
    text: str


@dataclass(frozen=True)
class ThinkingDone(Tagged):
    TYPE = "thinking_done"


@dataclass(frozen=True)
class ToolCallStart(Tagged):
    TYPE = "tool_call_start"
    id: str
    name: str
    args: dict[str, Any]
    agent: str | None = None


@dataclass(frozen=True)
class ToolOutputLine(Tagged):
    TYPE = "tool_output_line"
    id: str
    line: str
    stream: Literal["stdout", "stderr"] = "stdout"


@dataclass(frozen=True)
class ToolCallResult(Tagged):
    TYPE = "tool_call_result"
    id: str
    name: str
    output: str
    ok: bool


@dataclass(frozen=True)
class ApprovalRequest(Tagged):
    TYPE = "approval_request"
    id: str
    tool_name: str
    detail: str
    effect: str
    preview: str | None = None


@dataclass(frozen=True)
class ActionBlocked(Tagged):
    TYPE = "action_blocked"
    tool_name: str
    detail: str
    reason: str


@dataclass(frozen=True)
class AskUserRequest(Tagged):
    TYPE = "ask_user_request"
    id: str
    question: str
    options: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoopCapReached(Tagged):
    TYPE = "loop_cap_reached"
    cap: int
    recent_tools: list[str]


@dataclass(frozen=True)
class TodoUpdate(Tagged):
    TYPE = "todo_update"
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class BgTaskUpdate(Tagged):
    TYPE = "bg_task_update"
    task_id: str
    status: str


@dataclass(frozen=True)
class ChildAgentActivity(Tagged):
    TYPE = "child_agent_activity"
    task_id: str
    kind: str
    detail: str


@dataclass(frozen=True)
class ContextUsage(Tagged):
    TYPE = "context_usage"
    used: int
    max: int


@dataclass(frozen=True)
class Usage(Tagged):
    TYPE = "usage"
    prompt: int = 0
    completion: int = 0
    cache_read: int = 0
    cache_write: int = 0
    thinking: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True)
class Info(Tagged):
    TYPE = "info"
    message: str


@dataclass(frozen=True)
class Warn(Tagged):
    TYPE = "warn"
    message: str


@dataclass(frozen=True)
class Error(Tagged):
    TYPE = "error"
    message: str


EngineEvent = (
    TurnStart
    | TurnEnd
    | TextDelta
    | TextDone
    | ReplyDiscarded
    | ThinkingStart
    | ThinkingDelta
    | ThinkingDone
    | ToolCallStart
    | ToolOutputLine
    | ToolCallResult
    | ApprovalRequest
    | ActionBlocked
    | AskUserRequest
    | LoopCapReached
    | TodoUpdate
    | BgTaskUpdate
    | ChildAgentActivity
    | ContextUsage
    | Usage
    | Info
    | Warn
    | Error
)

EVENT_TYPES: dict[str, type[Tagged]] = registry(
    TurnStart,
    TurnEnd,
    TextDelta,
    TextDone,
    ReplyDiscarded,
    ThinkingStart,
    ThinkingDelta,
    ThinkingDone,
    ToolCallStart,
    ToolOutputLine,
    ToolCallResult,
    ApprovalRequest,
    ActionBlocked,
    AskUserRequest,
    LoopCapReached,
    TodoUpdate,
    BgTaskUpdate,
    ChildAgentActivity,
    ContextUsage,
    Usage,
    Info,
    Warn,
    Error,
)


def event_from_json(data: Any) -> EngineEvent:
    """Rebuild an event from its JSON form; ValueError if it is not one."""
    return decode(EVENT_TYPES, data, "event")  # type: ignore[return-value]
