"""Interrupt mid-stream, mid-tool and while waiting; queue_next while a turn runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from koda.engine.commands import EngineCommand, Interrupt, QueueNext
from koda.engine.dispatch import CANCELLED_NOTE
from koda.engine.events import (
    ApprovalRequest,
    EngineEvent,
    LoopCapReached,
    TextDelta,
    ThinkingDelta,
    ToolCallResult,
    ToolCallStart,
    ToolOutputLine,
    TurnEnd,
    Usage,
    Warn,
)
from koda.engine.history import build_history
from koda.providers.base import Message
from koda.tools.base import Effect, ToolContext, ToolResult
from koda.tools.catalog import ToolCatalog
from koda.tools.read import Read

if TYPE_CHECKING:
    from conftest import Harness, ReactiveSink

History = Callable[[list[Message]], None]
BOUND = 1.5  # seconds from the Interrupt command to TurnEnd


Answer = EngineCommand | list[EngineCommand] | None


def on(
    cls: type[Any], command: EngineCommand | list[EngineCommand], nth: int = 1
) -> Callable[[EngineEvent], Answer]:
    """Send `command` (or several) when the `nth` event of type `cls` arrives."""
    seen = 0

    def react(event: EngineEvent) -> Answer:
        nonlocal seen
        if isinstance(event, cls):
            seen += 1
            if seen == nth:
                return command
        return None

    return react


def reaction_delay(sink: ReactiveSink) -> float:
    """Seconds from the Interrupt command to TurnEnd."""
    sent = next(t for t, c in sink.sent if isinstance(c, Interrupt))
    return sink.time_of(TurnEnd) - sent


def end_of(sink: Any) -> TurnEnd:
    end = sink.events[-1]
    assert isinstance(end, TurnEnd)
    return end


class Sleepy:
    name = "Sleepy"
    description = "Sleeps for a long time."
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return "Sleepy"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        await asyncio.sleep(30)
        return ToolResult("woke up")


async def test_interrupt_mid_stream(harness: Harness, check_history: History) -> None:
    text = "This reply streams slowly, five characters every 100 ms, so it takes seconds."
    session = harness.session(
        [{"text": text, "chunk_size": 5, "delay_ms": 100}, {"text": "fresh answer"}]
    )
    t0 = time.monotonic()
    sink = await harness.turn(session, "first", on(TextDelta, Interrupt(), nth=3))
    assert time.monotonic() - t0 < 3
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < BOUND
    shown = sink.text()
    assert shown and shown != text and text.startswith(shown)

    rows = harness.store.messages.load(session.id, include_incomplete=True)
    assert [r.role for r in rows] == ["user", "assistant"]
    partial = rows[-1]
    assert partial.completed_at is None
    assert partial.content == shown
    assert [r.role for r in harness.store.messages.load(session.id)] == ["user"]

    sink = await harness.turn(session, "second")
    assert end_of(sink).reason.kind == "complete"
    sent = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    check_history(sent)
    assert [(m.role, m.content) for m in sent] == [("user", "first\n\nsecond")]
    assert all(shown not in m.content for m in sent)


async def test_interrupt_mid_thinking_keeps_the_partial_thinking(harness: Harness) -> None:
    session = harness.session(
        [{"thinking": "t" * 100, "text": "never", "chunk_size": 2, "delay_ms": 50}]
    )
    sink = await harness.turn(session, "q", on(ThinkingDelta, Interrupt(), nth=2))
    assert end_of(sink).reason.kind == "cancelled"
    row = harness.store.messages.load(session.id, include_incomplete=True)[-1]
    assert row.role == "assistant" and row.completed_at is None
    assert row.thinking and set(row.thinking) == {"t"} and len(row.thinking) < 100
    assert row.content == ""


async def test_interrupt_mid_bash(harness: Harness, check_history: History) -> None:
    marker = harness.project / "after.txt"
    session = harness.session(
        [
            {
                "text": "Sleeping.",
                "tool_calls": [
                    {
                        "id": "s1",
                        "name": "Bash",
                        "args": {"command": "sleep 1.5; touch after.txt; sleep 30"},
                    }
                ],
            },
            {"text": "next turn"},
        ],
        mode="auto",
    )
    t0 = time.monotonic()
    sink = await harness.turn(session, "sleep", on(ToolCallStart, Interrupt()))
    assert time.monotonic() - t0 < 3
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < BOUND

    rows = harness.store.messages.load(session.id)
    assert [r.role for r in rows] == ["user", "assistant", "tool"]
    assert rows[2].tool_call_id == "s1" and rows[2].content.startswith("[cancelled")
    assert rows[2].content == CANCELLED_NOTE
    [result] = sink.of_type(ToolCallResult)
    assert result.id == "s1" and not result.ok

    sink = await harness.turn(session, "what happened?")
    assert end_of(sink).reason.kind == "complete"
    sent = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    check_history(sent)
    assert [m.role for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2].tool_call_id == "s1" and sent[2].content.startswith("[cancelled")
    # The shell was really stopped: what it would have done after 1.5 s never happens.
    await asyncio.sleep(max(0.0, 1.8 - (time.monotonic() - t0)))
    assert not marker.exists()


async def test_interrupt_while_bash_prints(harness: Harness, check_history: History) -> None:
    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "s", "name": "Bash", "args": {"command": "echo started; sleep 30"}}
                ]
            }
        ]
    )
    sink = await harness.turn(session, "go", on(ToolOutputLine, Interrupt()))
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < 1.0
    rows = harness.store.messages.load(session.id)
    assert rows[-1].tool_call_id == "s" and rows[-1].content == CANCELLED_NOTE
    check_history(build_history(rows))


async def test_interrupt_stops_a_command_that_ignores_sigterm(harness: Harness) -> None:
    # The shell needs a moment to escalate to SIGKILL; the engine must not cut that short.
    command = "trap '' TERM; echo started; sleep 1; touch survived.txt"
    session = harness.session(
        [{"tool_calls": [{"id": "s", "name": "Bash", "args": {"command": command}}]}]
    )
    sink = await harness.turn(session, "go", on(ToolOutputLine, Interrupt()))
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < BOUND
    await asyncio.sleep(1.3)
    assert not (harness.project / "survived.txt").exists()


async def test_interrupt_mid_read_only_batch_closes_every_call(
    harness: Harness, check_history: History
) -> None:
    catalog = ToolCatalog([Read(), Sleepy()])
    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "a", "name": "Read", "args": {"path": "hello.txt"}},
                    {"id": "b", "name": "Sleepy", "args": {}},
                    {"id": "c", "name": "Sleepy", "args": {}},
                ]
            }
        ],
        catalog=catalog,
    )
    sink = await harness.turn(session, "go", on(ToolCallStart, Interrupt(), nth=3))
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < BOUND
    rows = harness.store.messages.load(session.id)
    assert [r.tool_call_id for r in rows if r.role == "tool"] == ["a", "b", "c"]
    assert all(r.content == CANCELLED_NOTE for r in rows if r.role == "tool")
    check_history(build_history(rows))


async def test_interrupt_while_waiting_for_approval(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [{"tool_calls": [{"id": "w", "name": "Write", "args": {"path": "a.txt", "content": "x"}}]}],
        mode="safe",
    )
    sink = await harness.turn(session, "write", on(ApprovalRequest, Interrupt()))
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < BOUND
    assert not (harness.project / "a.txt").exists()
    rows = harness.store.messages.load(session.id)
    assert rows[-1].tool_call_id == "w" and rows[-1].content == CANCELLED_NOTE
    check_history(build_history(rows))


async def test_interrupt_while_waiting_to_retry(harness: Harness) -> None:
    session = harness.session([{"error": "rate_limit", "retry_after": 20}, {"text": "never"}])
    sink = await harness.turn(session, "hi", on(Warn, Interrupt()))  # the retry warning
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < BOUND
    assert len(session.provider.requests) == 1  # type: ignore[attr-defined]


async def test_interrupt_at_the_step_cap(harness: Harness) -> None:
    from koda.config import KodaConfig

    session = harness.session(
        [{"tool_calls": [{"id": "r", "name": "Read", "args": {"path": "hello.txt"}}]}]
    )
    sink = await harness.turn(
        session, "go", on(LoopCapReached, Interrupt()), config=KodaConfig(max_iterations=1)
    )
    assert end_of(sink).reason.kind == "cancelled"
    assert reaction_delay(sink) < BOUND


async def test_interrupt_from_outside_the_sink(harness: Harness) -> None:
    session = harness.session([{"text": "slow", "first_delay_ms": 10_000}, {"text": "ok"}])
    session.add_user_message("hi")
    queue: asyncio.Queue[EngineCommand] = asyncio.Queue()
    from koda.engine.sink import CollectingSink

    sink = CollectingSink()
    task = asyncio.create_task(session.run_turn(harness_config(), [], sink, queue))
    await asyncio.sleep(0.2)
    sent = time.monotonic()
    queue.put_nowait(Interrupt())
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - sent < BOUND
    assert end_of(sink).reason.kind == "cancelled"
    # Nothing was streamed, so no partial row is stored.
    assert [r.role for r in harness.store.messages.load(session.id, include_incomplete=True)] == [
        "user"
    ]


async def test_queue_next_during_a_tool_reaches_the_next_request(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [
            {"tool_calls": [{"id": "s", "name": "Bash", "args": {"command": "sleep 0.5"}}]},
            {"text": "noted"},
        ]
    )
    sink = await harness.turn(
        session, "wait a bit", on(ToolCallStart, QueueNext("also check the README"))
    )
    assert end_of(sink).reason.kind == "complete"
    requests = session.provider.requests  # type: ignore[attr-defined]
    assert len(requests) == 2
    sent = requests[1].messages
    check_history(sent)
    assert [m.role for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[-1].content == "also check the README"
    rows = harness.store.messages.load(session.id)
    assert [r.role for r in rows] == ["user", "assistant", "tool", "user", "assistant"]


async def test_queue_next_during_the_final_reply_makes_one_more_call(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [
            {
                "text": "A first answer, streamed in small slow pieces.",
                "chunk_size": 4,
                "delay_ms": 20,
            },
            {"text": "Answer to the follow-up."},
        ]
    )
    sink = await harness.turn(
        session,
        "question",
        on(TextDelta, [QueueNext("follow-up one"), QueueNext("   "), QueueNext("follow-up two")]),
    )
    assert end_of(sink).reason.kind == "complete"
    requests = session.provider.requests  # type: ignore[attr-defined]
    assert len(requests) == 2
    sent = requests[1].messages
    check_history(sent)
    assert [(m.role, m.content) for m in sent] == [
        ("user", "question"),
        ("assistant", "A first answer, streamed in small slow pieces."),
        ("user", "follow-up one\n\nfollow-up two"),
    ]
    assert sink.text().endswith("Answer to the follow-up.")


def harness_config() -> Any:
    from koda.config import KodaConfig

    return KodaConfig(retry_base_delay=0.01)


async def test_empty_reply_with_queued_text_sends_a_valid_history(
    harness: Harness, check_history: History
) -> None:
    session = harness.session([{"text": "", "first_delay_ms": 200}, {"text": "now with content"}])
    sink = await harness.turn(session, "hello", on(Usage, QueueNext("are you there?")))
    assert end_of(sink).reason.kind == "complete"
    requests = session.provider.requests  # type: ignore[attr-defined]
    assert len(requests) == 2
    check_history(requests[1].messages)
    assert [(m.role, m.content) for m in requests[1].messages] == [
        ("user", "hello\n\nare you there?")
    ]
    # The history rebuilt from the store on the next turn agrees with what was sent.
    assert [
        (m.role, m.content) for m in build_history(harness.store.messages.load(session.id))
    ] == [
        ("user", "hello\n\nare you there?"),
        ("assistant", "now with content"),
    ]
