"""The trust matrix in a real turn: plan blocks, safe asks, auto runs, destructive always asks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from koda.engine.commands import ApprovalDecision, ApprovalResponse, EngineCommand
from koda.engine.events import (
    ActionBlocked,
    ApprovalRequest,
    EngineEvent,
    ToolCallResult,
    ToolCallStart,
    TurnEnd,
    Warn,
)
from koda.engine.trust import TrustMode, parse_mode, verdict
from koda.tools.base import Effect

if TYPE_CHECKING:
    from conftest import Harness


def answer(*decisions: ApprovalDecision) -> Callable[[EngineEvent], EngineCommand | None]:
    """A front end that answers approval requests with `decisions`, in order."""
    left = list(decisions)

    def react(event: EngineEvent) -> EngineCommand | None:
        if isinstance(event, ApprovalRequest):
            assert left, f"unexpected approval request: {event}"
            return ApprovalResponse(event.id, left.pop(0))
        return None

    return react


def write(id: str, path: str = "new.txt", content: str = "written\n") -> dict[str, Any]:
    return {"id": id, "name": "Write", "args": {"path": path, "content": content}}


def bash(id: str, command: str, name: str = "Bash") -> dict[str, Any]:
    return {"id": id, "name": name, "args": {"command": command}}


def sent_tool_text(session: Any, call_id: str) -> str:
    msgs = session.provider.requests[-1].messages
    return next(m.content for m in msgs if m.role == "tool" and m.tool_call_id == call_id)


def reason(sink: Any) -> str:
    end = sink.events[-1]
    assert isinstance(end, TurnEnd)
    return end.reason.kind


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        (Effect.READ_ONLY, ("run", "run", "run")),
        (Effect.LOCAL_MUTATION, ("block", "ask", "run")),
        (Effect.REMOTE_ACTION, ("block", "ask", "run")),
        (Effect.DESTRUCTIVE, ("block", "ask", "ask")),
    ],
)
def test_matrix(effect: Effect, expected: tuple[str, str, str]) -> None:
    assert (
        tuple(verdict(m, effect) for m in (TrustMode.PLAN, TrustMode.SAFE, TrustMode.AUTO))
        == expected
    )


def test_parse_mode_aliases_and_errors() -> None:
    assert parse_mode(" YOLO ") is TrustMode.AUTO
    assert parse_mode("read-only") is TrustMode.PLAN
    assert parse_mode("safe") is TrustMode.SAFE
    with pytest.raises(ValueError, match="unknown mode"):
        parse_mode("reckless")


async def test_plan_blocks_write(harness: Harness) -> None:
    session = harness.session(
        [{"tool_calls": [write("w1")]}, {"text": "I would write it."}], mode="plan"
    )
    sink = await harness.turn(session, "write a file")
    assert reason(sink) == "complete"
    [blocked] = sink.of_type(ActionBlocked)
    assert blocked.tool_name == "Write" and "new.txt" in blocked.detail
    assert not sink.of_type(ApprovalRequest)
    # A front end still sees the call, paired with its failed result.
    assert [s.id for s in sink.of_type(ToolCallStart)] == ["w1"]
    assert not (harness.project / "new.txt").exists()
    [result] = sink.of_type(ToolCallResult)
    assert not result.ok and result.output.startswith("Blocked")
    assert sent_tool_text(session, "w1").startswith("Blocked")


async def test_plan_runs_read_only_and_blocks_bash_mutation(harness: Harness) -> None:
    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "r", "name": "Read", "args": {"path": "hello.txt"}},
                    bash("b", "touch made.txt"),
                    bash("e", "echo harmless"),
                ]
            },
            {"text": "ok"},
        ],
        mode="plan",
    )
    sink = await harness.turn(session, "go")
    results = {r.id: r for r in sink.of_type(ToolCallResult)}
    assert results["r"].ok and results["e"].ok and "harmless" in results["e"].output
    assert not results["b"].ok and results["b"].output.startswith("Blocked")
    assert not (harness.project / "made.txt").exists()
    assert [b.tool_name for b in sink.of_type(ActionBlocked)] == ["Bash"]


async def test_safe_asks_and_approve_runs(harness: Harness) -> None:
    session = harness.session([{"tool_calls": [write("w1")]}, {"text": "Written."}], mode="safe")
    sink = await harness.turn(session, "write", answer(ApprovalDecision("approve")))
    assert reason(sink) == "complete"
    [request] = sink.of_type(ApprovalRequest)
    assert request.tool_name == "Write"
    assert request.effect == "local_mutation"
    assert "new.txt" in request.detail
    assert request.preview is not None and "+written" in request.preview
    assert (harness.project / "new.txt").read_text() == "written\n"
    [result] = sink.of_type(ToolCallResult)
    assert result.ok
    # The request comes before the tool starts.
    assert sink.events.index(request) < sink.events.index(sink.of_type(ToolCallStart)[0])
    assert not [w for w in sink.of_type(Warn) if "sandbox" in w.message]


async def test_safe_reject_does_not_run(harness: Harness) -> None:
    session = harness.session(
        [{"tool_calls": [write("w1")]}, {"text": "OK, I won't."}], mode="safe"
    )
    sink = await harness.turn(session, "write", answer(ApprovalDecision("reject")))
    assert reason(sink) == "complete"
    assert not (harness.project / "new.txt").exists()
    # The start comes after the refused approval, never before it.
    kinds = [
        type(e).__name__ for e in sink.events if isinstance(e, (ApprovalRequest, ToolCallStart))
    ]
    assert kinds == ["ApprovalRequest", "ToolCallStart"]
    text = sent_tool_text(session, "w1")
    assert "rejected" in text.lower()
    row = next(r for r in harness.store.messages.load(session.id) if r.role == "tool")
    assert row.tool_ok is False and "rejected" in row.content.lower()


async def test_reject_with_feedback_reaches_the_model(harness: Harness) -> None:
    session = harness.session([{"tool_calls": [write("w1")]}, {"text": "Will do."}], mode="safe")
    decision = ApprovalDecision("reject_with_feedback", feedback="put it in docs/ instead")
    await harness.turn(session, "write", answer(decision))
    assert not (harness.project / "new.txt").exists()
    assert "put it in docs/ instead" in sent_tool_text(session, "w1")


async def test_reject_auto_reason_reaches_the_model(harness: Harness) -> None:
    session = harness.session([{"tool_calls": [write("w1")]}, {"text": "Understood."}], mode="safe")
    decision = ApprovalDecision("reject_auto", reason="running headless; nobody can approve")
    await harness.turn(session, "write", answer(decision))
    assert not (harness.project / "new.txt").exists()
    assert "running headless; nobody can approve" in sent_tool_text(session, "w1")


async def test_approve_always_is_not_asked_again(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [write("w1", "a.txt")]},
            {"tool_calls": [write("w2", "b.txt")]},
            {"text": "both written"},
            {"tool_calls": [write("w3", "c.txt")]},
            {"text": "third written"},
        ],
        mode="safe",
    )
    sink = await harness.turn(session, "write two", answer(ApprovalDecision("approve_always")))
    assert reason(sink) == "complete"
    assert len(sink.of_type(ApprovalRequest)) == 1
    assert (harness.project / "a.txt").exists() and (harness.project / "b.txt").exists()
    # Still remembered in a later turn of the same session.
    sink = await harness.turn(session, "one more")
    assert not sink.of_type(ApprovalRequest)
    assert (harness.project / "c.txt").exists()


async def test_approve_always_for_bash_is_per_program(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [bash("b1", "touch one.txt")]},
            {"tool_calls": [bash("b2", "touch two.txt")]},
            {"tool_calls": [bash("b3", "mkdir three")]},
            {"text": "done"},
        ],
        mode="safe",
    )
    sink = await harness.turn(
        session, "go", answer(ApprovalDecision("approve_always"), ApprovalDecision("reject"))
    )
    assert reason(sink) == "complete"
    asked = [r.detail for r in sink.of_type(ApprovalRequest)]
    assert len(asked) == 2 and "mkdir" in asked[1]
    assert (harness.project / "two.txt").exists()
    assert not (harness.project / "three").exists()


async def test_approve_always_key_uses_the_canonical_tool_name(harness: Harness) -> None:
    # A lower-case "bash" call must not turn approve_always into "any bash command".
    session = harness.session(
        [
            {"tool_calls": [bash("b1", "touch one.txt", name="bash")]},
            {"tool_calls": [bash("b2", "mkdir other", name="bash")]},
            {"text": "done"},
        ],
        mode="safe",
    )
    sink = await harness.turn(
        session, "go", answer(ApprovalDecision("approve_always"), ApprovalDecision("reject"))
    )
    assert len(sink.of_type(ApprovalRequest)) == 2
    assert not (harness.project / "other").exists()


async def test_auto_runs_writes_without_asking_or_warning(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [write("w1")]},
            {"text": "done"},
            {"tool_calls": [write("w2", "x.txt")]},
            {"text": "again"},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "write")
    assert reason(sink) == "complete"
    assert not sink.of_type(ApprovalRequest)
    assert (harness.project / "new.txt").read_text() == "written\n"
    # Auto is only given where the sandbox works: nothing to warn about.
    assert not sink.of_type(Warn)
    sink = await harness.turn(session, "again")
    assert not sink.of_type(Warn)
    assert (harness.project / "x.txt").exists()


async def test_destructive_bash_asks_even_in_auto(harness: Harness) -> None:
    victim = harness.project / "x"
    victim.mkdir()
    (victim / "f").write_text("keep me")
    session = harness.session(
        [{"tool_calls": [bash("d1", "rm -rf x")]}, {"text": "not removed"}], mode="auto"
    )
    sink = await harness.turn(session, "clean up", answer(ApprovalDecision("reject")))
    assert reason(sink) == "complete"
    [request] = sink.of_type(ApprovalRequest)
    assert request.effect == "destructive" and "rm -rf x" in request.detail
    assert (victim / "f").read_text() == "keep me"


async def test_destructive_bash_runs_when_approved_in_auto(harness: Harness) -> None:
    (harness.project / "x").mkdir()
    session = harness.session(
        [{"tool_calls": [bash("d1", "rm -rf x")]}, {"text": "removed"}], mode="auto"
    )
    sink = await harness.turn(session, "clean up", answer(ApprovalDecision("approve")))
    assert reason(sink) == "complete"
    assert not (harness.project / "x").exists()


async def test_stale_approval_for_another_request_is_ignored(harness: Harness) -> None:
    session = harness.session([{"tool_calls": [write("w1")]}, {"text": "ok"}], mode="safe")

    def confused(event: EngineEvent) -> list[EngineCommand] | None:
        if isinstance(event, ApprovalRequest):
            # A late click meant for some other prompt first, then the real answer.
            return [
                ApprovalResponse("not-" + event.id, ApprovalDecision("approve")),
                ApprovalResponse(event.id, ApprovalDecision("reject")),
            ]
        return None

    sink = await harness.turn(session, "write", confused)
    assert reason(sink) == "complete"
    assert not (harness.project / "new.txt").exists()
    assert "rejected" in sent_tool_text(session, "w1").lower()


async def test_approve_always_does_not_cover_a_destructive_command(harness: Harness) -> None:
    (harness.project / "x").mkdir()
    session = harness.session(
        [
            {"tool_calls": [bash("b1", "touch one.txt")]},
            {"tool_calls": [bash("b2", "touch two.txt && rm -rf x")]},
            {"text": "done"},
        ],
        mode="safe",
    )
    sink = await harness.turn(
        session, "go", answer(ApprovalDecision("approve_always"), ApprovalDecision("reject"))
    )
    requests = sink.of_type(ApprovalRequest)
    assert [r.effect for r in requests] == ["local_mutation", "destructive"]
    assert (harness.project / "x").is_dir()


async def test_approve_always_on_a_destructive_command_covers_the_same_program(
    harness: Harness,
) -> None:
    for name in ("a", "b"):
        (harness.project / name).mkdir()
    session = harness.session(
        [
            {"tool_calls": [bash("d1", "rm -rf a")]},
            {"tool_calls": [bash("d2", "rm -rf b")]},
            {"text": "done"},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "go", answer(ApprovalDecision("approve_always")))
    assert len(sink.of_type(ApprovalRequest)) == 1
    assert not (harness.project / "a").exists() and not (harness.project / "b").exists()
