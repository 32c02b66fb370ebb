"""TurnStart first and TurnEnd last on every path; streaming of text and thinking."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from koda.engine.commands import EngineCommand, Interrupt
from koda.engine.events import (
    ContextUsage,
    EngineEvent,
    Error,
    TextDelta,
    TextDone,
    ThinkingDelta,
    ThinkingDone,
    ThinkingStart,
    ToolCallResult,
    TurnEnd,
    TurnStart,
    Usage,
    Warn,
)
from koda.engine.sink import CollectingSink
from koda.tools.base import Effect, ToolContext, ToolResult
from koda.tools.catalog import ToolCatalog
from koda.tools.read import Read

if TYPE_CHECKING:
    from conftest import Harness


def bracket(events: list[EngineEvent]) -> TurnEnd:
    """Exactly one TurnStart, first, and one TurnEnd, last, with the same turn id."""
    starts = [e for e in events if isinstance(e, TurnStart)]
    ends = [e for e in events if isinstance(e, TurnEnd)]
    assert len(starts) == 1, events
    assert len(ends) == 1, events
    assert events[0] is starts[0]
    assert events[-1] is ends[0]
    assert starts[0].turn_id == ends[0].turn_id
    return ends[0]


class Exploding:
    """A read-only tool whose run raises something no tool should raise."""

    name = "Explode"
    description = "Always fails in an unexpected way."
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return "Explode"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        raise RuntimeError("kaboom inside the tool")


async def test_plain_text_reply_completes(harness: Harness) -> None:
    text = "Hello there, this is a reply in several chunks."
    session = harness.session(
        [{"text": text, "chunk_size": 5, "usage": {"prompt": 11, "completion": 7}}]
    )
    sink = await harness.turn(session, "hi")
    end = bracket(sink.events)
    assert end.reason.kind == "complete"
    assert end.reason.message is None
    deltas = sink.of_type(TextDelta)
    assert len(deltas) == len(range(0, len(text), 5))
    assert all(len(d.text) <= 5 for d in deltas)
    assert sink.text() == text
    # TextDone follows the last delta, once.
    kinds = [type(e) for e in sink.events]
    assert kinds.count(TextDone) == 1
    assert kinds.index(TextDone) > max(i for i, k in enumerate(kinds) if k is TextDelta)
    assert not sink.of_type(Error)
    assert sink.of_type(Usage) == [Usage(11, 7, 0, 0, 0, None)]
    assert sink.of_type(ContextUsage) == [ContextUsage(used=18, max=200_000)]

    rows = harness.store.messages.load(session.id)
    assert [(r.role, r.content) for r in rows] == [("user", "hi"), ("assistant", text)]
    assert rows[1].is_complete
    assert rows[1].usage["prompt"] == 11
    provider = session.provider
    assert len(provider.requests) == 1  # type: ignore[attr-defined]
    assert [(m.role, m.content) for m in provider.requests[0].messages] == [("user", "hi")]  # type: ignore[attr-defined]


async def test_thinking_streams_before_text_and_is_persisted(harness: Harness) -> None:
    thinking = "Let me think about this carefully."
    text = "The answer is 42."
    session = harness.session([{"thinking": thinking, "text": text, "chunk_size": 4}])
    sink = await harness.turn(session, "question")
    assert bracket(sink.events).reason.kind == "complete"
    kinds = [type(e) for e in sink.events]
    assert kinds.count(ThinkingStart) == 1
    assert kinds.count(ThinkingDone) == 1
    start, done = kinds.index(ThinkingStart), kinds.index(ThinkingDone)
    thinking_idx = [i for i, k in enumerate(kinds) if k is ThinkingDelta]
    text_idx = [i for i, k in enumerate(kinds) if k is TextDelta]
    assert len(thinking_idx) == len(range(0, len(thinking), 4))
    assert start < min(thinking_idx) and max(thinking_idx) < done < min(text_idx)
    assert "".join(e.text for e in sink.of_type(ThinkingDelta)) == thinking
    assert sink.text() == text
    row = harness.store.messages.load(session.id)[-1]
    assert (row.role, row.content, row.thinking) == ("assistant", text, thinking)


async def test_thinking_reaches_the_next_request(harness: Harness) -> None:
    session = harness.session([{"thinking": "hmm", "text": "one"}, {"text": "two"}])
    await harness.turn(session, "a")
    await harness.turn(session, "b")
    msgs = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    assert [(m.role, m.content, m.thinking) for m in msgs] == [
        ("user", "a", None),
        ("assistant", "one", "hmm"),
        ("user", "b", None),
    ]


async def test_provider_error_ends_with_error_reason(harness: Harness) -> None:
    session = harness.session([{"text": "partial ", "error": "server", "message": "upstream 500"}])
    sink = await harness.turn(session, "hi")
    end = bracket(sink.events)
    assert end.reason.kind == "error"
    assert end.reason.message == "upstream 500"
    assert [e.message for e in sink.of_type(Error)] == ["upstream 500"]
    assert sink.events.index(sink.of_type(Error)[0]) == len(sink.events) - 2
    assert len(session.provider.requests) == 1  # type: ignore[attr-defined]
    # The failed reply is not stored as a completed assistant message.
    assert [r.role for r in harness.store.messages.load(session.id)] == ["user"]


async def test_auth_error_is_not_retried(harness: Harness) -> None:
    session = harness.session([{"error": "auth", "message": "invalid API key"}, {"text": "never"}])
    sink = await harness.turn(session, "hi")
    end = bracket(sink.events)
    assert end.reason.kind == "error"
    assert end.reason.message is not None and "invalid API key" in end.reason.message
    assert len(sink.of_type(Error)) == 1
    assert not [w for w in sink.of_type(Warn) if "retry" in w.message]
    assert len(session.provider.requests) == 1  # type: ignore[attr-defined]


async def test_exhausted_script_ends_with_error(harness: Harness) -> None:
    session = harness.session([{"text": "only one"}])
    await harness.turn(session, "first")
    sink = await harness.turn(session, "second")
    end = bracket(sink.events)
    assert end.reason.kind == "error"
    assert end.reason.message is not None and "no reply left" in end.reason.message
    assert "had 1" in end.reason.message


async def test_empty_script_ends_with_error(harness: Harness) -> None:
    session = harness.session([])
    sink = await harness.turn(session, "hi")
    assert bracket(sink.events).reason.kind == "error"


async def test_unexpected_tool_exception_becomes_an_error_result(harness: Harness) -> None:
    catalog = ToolCatalog([Read(), Exploding()])
    session = harness.session(
        [
            {"tool_calls": [{"id": "x1", "name": "Explode", "args": {}}]},
            {"text": "I saw the failure."},
        ],
        catalog=catalog,
    )
    sink = await harness.turn(session, "go")
    assert bracket(sink.events).reason.kind == "complete"
    [result] = sink.of_type(ToolCallResult)
    assert not result.ok
    assert "RuntimeError" in result.output and "kaboom inside the tool" in result.output
    last = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    assert last[-1].role == "tool" and last[-1].tool_call_id == "x1"
    assert "kaboom inside the tool" in last[-1].content
    tool_row = next(r for r in harness.store.messages.load(session.id) if r.role == "tool")
    assert tool_row.tool_ok is False


async def test_cancelled_turn_is_bracketed(harness: Harness) -> None:
    session = harness.session([{"text": "again"}])

    def stop_at_start(event: EngineEvent) -> EngineCommand | None:
        return Interrupt() if isinstance(event, TurnStart) else None

    sink = await harness.turn(session, "hi", stop_at_start)
    assert bracket(sink.events).reason.kind == "cancelled"
    assert not sink.of_type(Error)
    # Interrupted before the request went out: the model was never asked.
    assert session.provider.requests == []  # type: ignore[attr-defined]
    # The token is armed again: the next turn runs normally.
    sink2 = await harness.turn(session, "once more")
    assert bracket(sink2.events).reason.kind == "complete"
    assert sink2.text() == "again"


async def test_task_cancellation_still_emits_turn_end(harness: Harness) -> None:
    session = harness.session([{"text": "slow", "first_delay_ms": 5000}])
    session.add_user_message("hi")
    sink = CollectingSink()
    queue: asyncio.Queue[EngineCommand] = asyncio.Queue()
    task = asyncio.create_task(session.run_turn(harness_config(), [], sink, queue))
    await asyncio.sleep(0.1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("run_turn swallowed the task cancellation")
    assert bracket(sink.events).reason.kind == "cancelled"


async def test_turn_without_command_queue_completes(harness: Harness) -> None:
    session = harness.session([{"text": "fine"}])
    session.add_user_message("hi")
    sink = CollectingSink()
    await session.run_turn(harness_config(), [], sink, None)
    assert bracket(sink.events).reason.kind == "complete"


async def test_max_tokens_stop_asks_the_model_to_continue(harness: Harness) -> None:
    session = harness.session(
        [{"text": "cut sh", "stop_reason": "max_tokens"}, {"text": "ort, now whole."}]
    )
    sink = await harness.turn(session, "hi")
    assert bracket(sink.events).reason.kind == "complete"
    assert sink.text() == "cut short, now whole."
    second = session.provider.requests[1].messages  # type: ignore[attr-defined]
    assert [m.role for m in second] == ["user", "assistant", "user"]
    assert second[1].content == "cut sh", "the cut reply is kept, not thrown away"
    assert "cut off by the output token limit" in second[2].content
    assert not [w for w in sink.of_type(Warn) if "token limit" in w.message]


async def test_max_tokens_gives_up_after_two_continuations(harness: Harness) -> None:
    cut = {"text": "more", "stop_reason": "max_tokens"}
    session = harness.session([cut, cut, cut, {"text": "never asked"}])
    sink = await harness.turn(session, "hi")
    assert bracket(sink.events).reason.kind == "complete"
    assert len(session.provider.requests) == 3  # type: ignore[attr-defined]
    assert any("cut off by the output token limit" in w.message for w in sink.of_type(Warn))


async def test_every_turn_is_bracketed_across_a_session(harness: Harness) -> None:
    session = harness.session([{"text": "a"}, {"error": "server"}, {"text": "c"}])
    reasons = []
    for prompt in ("1", "2", "3", "4"):
        sink = await harness.turn(session, prompt)
        reasons.append(bracket(sink.events).reason.kind)
    assert reasons == ["complete", "error", "complete", "error"]


def harness_config() -> Any:
    from koda.config import KodaConfig

    return KodaConfig(retry_base_delay=0.01)
