"""Engine commands: the only way a front end talks to a running turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from koda.engine.tagged import Tagged, decode, registry

DecisionKind = Literal["approve", "approve_always", "reject", "reject_with_feedback", "reject_auto"]
LoopAction = Literal["stop", "continue50", "continue200"]
LOOP_EXTENSIONS: dict[str, int] = {"stop": 0, "continue50": 50, "continue200": 200}


@dataclass(frozen=True)
class ApprovalDecision:
    decision: DecisionKind
    feedback: str | None = None
    reason: str | None = None

    @property
    def approved(self) -> bool:
        return self.decision in ("approve", "approve_always")


@dataclass(frozen=True)
class Interrupt(Tagged):
    TYPE = "interrupt"


@dataclass(frozen=True)
class ApprovalResponse(Tagged):
    TYPE = "approval_response"
    id: str
    decision: ApprovalDecision

    @staticmethod
    def decode_fields(kw: dict[str, Any]) -> dict[str, Any]:
        raw = kw.get("decision")
        if isinstance(raw, str):
            raw = {"decision": raw}
        if not isinstance(raw, dict) or raw.get("decision") not in DecisionKind.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"approval_response has an invalid decision: {raw!r}")
        kw["decision"] = ApprovalDecision(
            decision=raw["decision"], feedback=raw.get("feedback"), reason=raw.get("reason")
        )
        return kw


@dataclass(frozen=True)
class AskUserResponse(Tagged):
    TYPE = "ask_user_response"
    id: str
    answer: str


@dataclass(frozen=True)
class LoopDecision(Tagged):
    TYPE = "loop_decision"
    action: LoopAction

    @staticmethod
    def decode_fields(kw: dict[str, Any]) -> dict[str, Any]:
        action = kw.get("action")
        if not isinstance(action, str) or action not in LOOP_EXTENSIONS:
            raise ValueError(f"loop_decision action must be one of {sorted(LOOP_EXTENSIONS)}")
        return kw


@dataclass(frozen=True)
class QueueNext(Tagged):
    TYPE = "queue_next"
    text: str


EngineCommand = Interrupt | ApprovalResponse | AskUserResponse | LoopDecision | QueueNext

COMMAND_TYPES: dict[str, type[Tagged]] = registry(
    Interrupt, ApprovalResponse, AskUserResponse, LoopDecision, QueueNext
)


def command_from_json(data: Any) -> EngineCommand:
    """Rebuild a command from its JSON form; ValueError if it is not one."""
    return decode(COMMAND_TYPES, data, "command")  # type: ignore[return-value]
