"""Every event and command survives a JSON round trip; malformed JSON is a ValueError."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from koda.engine.commands import (
    COMMAND_TYPES,
    ApprovalDecision,
    ApprovalResponse,
    AskUserResponse,
    Interrupt,
    LoopDecision,
    QueueNext,
    command_from_json,
)
from koda.engine.events import (
    EVENT_TYPES,
    ActionBlocked,
    ApprovalRequest,
    AskUserRequest,
    BgTaskUpdate,
    ChildAgentActivity,
    ContextUsage,
    Error,
    Info,
    LoopCapReached,
    ReplyDiscarded,
    TextDelta,
    TextDone,
    ThinkingDelta,
    ThinkingDone,
    ThinkingStart,
    TodoUpdate,
    ToolCallResult,
    ToolCallStart,
    ToolOutputLine,
    TurnEnd,
    TurnEndReason,
    TurnStart,
    Usage,
    Warn,
    event_from_json,
)
from koda.engine.tagged import Tagged

EVENTS: list[Tagged] = [
    TurnStart("t1"),
    TurnEnd("t1", TurnEndReason("complete")),
    TurnEnd("t1", TurnEndReason("cancelled")),
    TurnEnd("t1", TurnEndReason("error", "boom")),
    TextDelta("héllo ✓"),
    TextDone(),
    ReplyDiscarded("the connection dropped"),
    ThinkingStart(),
    ThinkingDelta("hmm"),
    ThinkingDone(),
    ToolCallStart("c1", "Read", {"path": "a.txt", "nested": {"x": [1, 2]}}),
    ToolCallStart("c2", "Bash", {"command": "ls"}, agent="child"),
    ToolOutputLine("c1", "line", "stderr"),
    ToolOutputLine("c1", "line"),
    ToolCallResult("c1", "Read", "out", True),
    ToolCallResult("c1", "Read", "bad", False),
    ApprovalRequest("r1", "Write", "Write a.txt", "local_mutation", "+hello"),
    ApprovalRequest("r2", "Bash", "rm -rf x", "destructive"),
    ActionBlocked("Write", "Write a.txt", "plan mode"),
    AskUserRequest("q1", "Which?", ["a", "b"]),
    AskUserRequest("q2", "Free text?"),
    LoopCapReached(200, ["Read", "Bash"]),
    TodoUpdate([{"text": "do it", "status": "pending"}]),
    BgTaskUpdate("b1", "running"),
    ChildAgentActivity("k1", "tool", "Read a.txt"),
    ContextUsage(used=10, max=200_000),
    Usage(1, 2, 3, 4, 5, 0.25),
    Usage(),
    Info("fyi"),
    Warn("careful"),
    Error("broken"),
]

COMMANDS: list[Tagged] = [
    Interrupt(),
    ApprovalResponse("r1", ApprovalDecision("approve")),
    ApprovalResponse("r1", ApprovalDecision("approve_always")),
    ApprovalResponse("r1", ApprovalDecision("reject")),
    ApprovalResponse("r1", ApprovalDecision("reject_with_feedback", feedback="use tabs")),
    ApprovalResponse("r1", ApprovalDecision("reject_auto", reason="headless")),
    AskUserResponse("q1", "a"),
    LoopDecision("stop"),
    LoopDecision("continue50"),
    LoopDecision("continue200"),
    QueueNext("and then this"),
]

SNAKE = re.compile(r"^[a-z]+(_[a-z]+)*$")


def test_every_event_class_is_covered() -> None:
    assert {type(e) for e in EVENTS} == set(EVENT_TYPES.values())


def test_every_command_class_is_covered() -> None:
    assert {type(c) for c in COMMANDS} == set(COMMAND_TYPES.values())


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_event_round_trips_through_json_text(event: Tagged) -> None:
    data = event.to_json()
    assert SNAKE.match(data["type"]), data["type"]
    assert data["type"] == type(event).TYPE
    back = event_from_json(json.loads(json.dumps(data)))
    assert back == event
    assert type(back) is type(event)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_command_round_trips_through_json_text(command: Tagged) -> None:
    data = command.to_json()
    assert SNAKE.match(data["type"]), data["type"]
    back = command_from_json(json.loads(json.dumps(data)))
    assert back == command


def test_type_tags_are_unique_and_snake_case() -> None:
    tags = [cls.TYPE for cls in [*EVENT_TYPES.values(), *COMMAND_TYPES.values()]]
    assert len(tags) == len(set(tags))
    assert all(SNAKE.match(t) for t in tags)


def test_turn_end_json_shape() -> None:
    data = TurnEnd("t", TurnEndReason("error", "why")).to_json()
    assert data == {
        "type": "turn_end",
        "turn_id": "t",
        "reason": {"kind": "error", "message": "why"},
    }


def test_approval_decision_may_be_a_bare_string() -> None:
    cmd = command_from_json({"type": "approval_response", "id": "r", "decision": "reject"})
    assert cmd == ApprovalResponse("r", ApprovalDecision("reject"))
    assert not ApprovalDecision("reject").approved
    assert ApprovalDecision("approve_always").approved


def test_unknown_extra_keys_are_ignored() -> None:
    assert event_from_json({"type": "info", "message": "m", "extra": 1}) == Info("m")


BAD_EVENTS: list[Any] = [
    None,
    [],
    "turn_start",
    42,
    {},
    {"type": 3},
    {"type": None, "turn_id": "x"},
    {"type": "no_such_event"},
    {"type": "TurnStart", "turn_id": "x"},
    {"type": "turn_start"},
    {"type": "text_delta"},
    {"type": "tool_call_result", "id": "c", "name": "Read", "output": "x"},
    {"type": "loop_cap_reached", "cap": 3},
    {"type": "turn_end", "turn_id": "t"},
    {"type": "turn_end", "turn_id": "t", "reason": "complete"},
    {"type": "turn_end", "turn_id": "t", "reason": {"kind": "bogus"}},
    {"type": "turn_end", "turn_id": "t", "reason": {"kind": []}},
    {"type": "interrupt"},
]


@pytest.mark.parametrize("data", BAD_EVENTS, ids=repr)
def test_malformed_event_is_value_error(data: Any) -> None:
    with pytest.raises(ValueError):
        event_from_json(data)


BAD_COMMANDS: list[Any] = [
    None,
    "interrupt",
    {"kind": "interrupt"},
    {"type": "no_such_command"},
    {"type": "turn_start", "turn_id": "x"},
    {"type": "approval_response", "id": "r"},
    {"type": "approval_response", "decision": "approve"},
    {"type": "approval_response", "id": "r", "decision": "maybe"},
    {"type": "approval_response", "id": "r", "decision": {"decision": "yes"}},
    {"type": "approval_response", "id": "r", "decision": {}},
    {"type": "approval_response", "id": "r", "decision": 1},
    {"type": "approval_response", "id": "r", "decision": ["approve"]},
    {"type": "approval_response", "id": "r", "decision": {"decision": ["approve"]}},
    {"type": "ask_user_response", "id": "q"},
    {"type": "loop_decision"},
    {"type": "loop_decision", "action": "forever"},
    {"type": "loop_decision", "action": ["stop"]},
    {"type": "loop_decision", "action": {"a": 1}},
    {"type": "queue_next"},
]


@pytest.mark.parametrize("data", BAD_COMMANDS, ids=repr)
def test_malformed_command_is_value_error(data: Any) -> None:
    with pytest.raises(ValueError):
        command_from_json(data)


def test_events_are_frozen() -> None:
    event = TextDelta("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.text = "y"  # type: ignore[misc]
