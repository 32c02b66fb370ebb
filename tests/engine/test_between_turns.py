"""Commands sent between turns, sessions with no command channel, and remembered approvals."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from koda.config import KodaConfig
from koda.engine.commands import (
    ApprovalDecision,
    ApprovalResponse,
    EngineCommand,
    Interrupt,
    QueueNext,
)
from koda.engine.events import ApprovalRequest, EngineEvent, Info, LoopCapReached, TurnEnd
from koda.engine.sink import CollectingSink
from koda.tools.bash_effect import command_head

if TYPE_CHECKING:
    from conftest import Harness


def end(sink: CollectingSink) -> TurnEnd:
    [last] = sink.of_type(TurnEnd)
    assert sink.events[-1] is last
    return last


async def test_a_late_interrupt_does_not_cancel_the_next_turn(harness: Harness) -> None:
    session = harness.session([{"text": "one"}, {"text": "two"}])
    queue: asyncio.Queue[EngineCommand] = asyncio.Queue()
    await harness.turn(session, "first", commands=queue)
    queue.put_nowait(Interrupt())  # pressed just after the first turn ended
    sink = await harness.turn(session, "second", commands=queue)
    assert end(sink).reason.kind == "complete"
    assert sink.text() == "two"


async def test_text_queued_between_turns_goes_with_the_next_prompt(harness: Harness) -> None:
    session = harness.session([{"text": "one"}, {"text": "two"}])
    queue: asyncio.Queue[EngineCommand] = asyncio.Queue()
    await harness.turn(session, "first", commands=queue)
    queue.put_nowait(QueueNext("and mind the tests"))
    await harness.turn(session, "second", commands=queue)
    requests = session.provider.requests  # type: ignore[attr-defined]
    assert len(requests) == 2, "the queued text must not cost an extra model call"
    assert requests[1].messages[-1].content == "second\n\nand mind the tests"


async def test_text_queued_as_the_turn_is_interrupted_is_kept(harness: Harness) -> None:
    session = harness.session(
        [{"text": "a long answer", "chunk_size": 1, "delay_ms": 50}, {"text": "next"}]
    )

    def steer_then_stop(event: EngineEvent) -> list[EngineCommand] | None:
        if event.TYPE == "text_delta" and event.text == "a":  # type: ignore[union-attr]
            return [QueueNext("also this"), Interrupt()]
        return None

    sink = await harness.turn(session, "go", steer_then_stop)
    assert end(sink).reason.kind == "cancelled"
    assert any("queued message was saved" in e.message for e in sink.of_type(Info))
    await harness.turn(session, "continue")
    sent = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    assert [m.role for m in sent] == ["user"]
    assert sent[0].content == "go\n\nalso this\n\ncontinue"


async def test_without_a_command_channel_approvals_are_refused_not_awaited(
    harness: Harness,
) -> None:
    write = {"id": "w1", "name": "Write", "args": {"path": "x.txt", "content": "x"}}
    session = harness.session([{"tool_calls": [write]}, {"text": "ok"}], mode="safe")
    session.add_user_message("write x")
    sink = CollectingSink()
    await asyncio.wait_for(session.run_turn(KodaConfig(), [], sink, None), 10)
    assert end(sink).reason.kind == "complete"
    assert sink.of_type(ApprovalRequest)
    assert not (harness.project / "x.txt").exists()
    tool_msg = session.provider.requests[-1].messages[-1]  # type: ignore[attr-defined]
    assert tool_msg.role == "tool" and "no way to ask the user" in tool_msg.content


async def test_without_a_command_channel_the_step_cap_stops(harness: Harness) -> None:
    glob = {"name": "Glob", "args": {"pattern": "*.none"}}
    session = harness.session([{"tool_calls": [glob]}, {"tool_calls": [glob]}, {"text": "x"}])
    session.add_user_message("look")
    sink = CollectingSink()
    config = KodaConfig(max_iterations=1)
    await asyncio.wait_for(session.run_turn(config, [], sink, None), 10)
    assert sink.of_type(LoopCapReached)
    assert end(sink).reason.kind == "error"


async def test_approve_always_is_per_program_and_subcommand(harness: Harness) -> None:
    def bash(call_id: str, command: str) -> dict[str, Any]:
        return {"id": call_id, "name": "Bash", "args": {"command": command}}

    session = harness.session(
        [
            {"tool_calls": [bash("b1", "git init -q")]},
            {"tool_calls": [bash("b2", "git init -q")]},
            {"tool_calls": [bash("b3", "git add .")]},
            {"text": "done"},
        ],
        mode="safe",
    )
    asked: list[str] = []

    def always(event: EngineEvent) -> EngineCommand | None:
        if isinstance(event, ApprovalRequest):
            asked.append(event.detail)
            return ApprovalResponse(event.id, ApprovalDecision("approve_always"))
        return None

    await harness.turn(session, "set up git", always)
    # `git init` was approved for good; that says nothing about `git add`.
    assert asked == ["Bash: git init -q", "Bash: git add ."]


def test_command_head_keeps_the_subcommand() -> None:
    assert command_head("git commit -m 'x'") == "git commit"
    assert command_head("git push --force") == "git push"
    assert command_head("FOO=1 npm test") == "npm test"
    assert command_head("ls -la") == "ls"
    assert command_head("python3 ./build.py") == "python3"
