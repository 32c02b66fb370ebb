"""The step cap waits for a LoopDecision; repeated identical calls warn, then stop the turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from koda.config import KodaConfig
from koda.engine.commands import EngineCommand, LoopAction, LoopDecision
from koda.engine.events import EngineEvent, Error, LoopCapReached, ToolCallResult, TurnEnd
from koda.engine.loop_guard import LoopGuard, args_preview
from koda.providers.base import Message, ToolCall

if TYPE_CHECKING:
    from conftest import Harness

History = Callable[[list[Message]], None]
CAPPED = KodaConfig(max_iterations=2, retry_base_delay=0.01)


def read(id: str, path: str = "hello.txt") -> dict[str, Any]:
    return {"id": id, "name": "Read", "args": {"path": path}}


def decide(*actions: LoopAction) -> Callable[[EngineEvent], EngineCommand | None]:
    left = list(actions)

    def react(event: EngineEvent) -> EngineCommand | None:
        if isinstance(event, LoopCapReached):
            assert left, "asked about the cap more often than expected"
            return LoopDecision(left.pop(0))
        return None

    return react


def end_of(sink: Any) -> TurnEnd:
    end = sink.events[-1]
    assert isinstance(end, TurnEnd)
    return end


def script_of_reads(n: int) -> list[dict[str, Any]]:
    # Different files each time, so the repeat detector stays quiet.
    files = ["hello.txt", "src/app.py"]
    return [{"tool_calls": [read(f"c{i}", files[i % 2])]} for i in range(n)]


async def test_cap_reached_then_stop(harness: Harness, check_history: History) -> None:
    session = harness.session([*script_of_reads(3), {"text": "never"}])
    sink = await harness.turn(session, "go", decide("stop"), config=CAPPED)
    [cap] = sink.of_type(LoopCapReached)
    assert cap.cap == 2
    assert cap.recent_tools == ["Read", "Read"]
    end = end_of(sink)
    assert end.reason.kind == "error"
    assert end.reason.message is not None and "2 model calls" in end.reason.message
    assert len(session.provider.requests) == 2  # type: ignore[attr-defined]
    check_history(harness_history(harness, session))


async def test_cap_waits_for_the_decision(harness: Harness) -> None:
    # Nobody answers at first: the turn must wait rather than end on its own.
    import asyncio

    session = harness.session([*script_of_reads(3), {"text": "finished"}])
    session.add_user_message("go")
    queue: asyncio.Queue[EngineCommand] = asyncio.Queue()
    from koda.engine.sink import CollectingSink

    sink = CollectingSink()
    task = asyncio.create_task(session.run_turn(CAPPED, [], sink, queue))
    for _ in range(200):
        if sink.of_type(LoopCapReached):
            break
        await asyncio.sleep(0.01)
    assert sink.of_type(LoopCapReached)
    await asyncio.sleep(0.2)
    assert not task.done()
    assert not sink.of_type(TurnEnd)
    queue.put_nowait(LoopDecision("continue50"))
    await asyncio.wait_for(task, 10)
    assert end_of(sink).reason.kind == "complete"
    assert sink.text() == "finished"


async def test_cap_continue50_lets_the_turn_go_on(harness: Harness) -> None:
    session = harness.session([*script_of_reads(5), {"text": "finished"}])
    sink = await harness.turn(session, "go", decide("continue50"), config=CAPPED)
    assert end_of(sink).reason.kind == "complete"
    assert sink.text() == "finished"
    assert len(sink.of_type(LoopCapReached)) == 1
    assert len(session.provider.requests) == 6  # type: ignore[attr-defined]


def test_extend_moves_the_cap() -> None:
    guard = LoopGuard(2)
    guard.iterations = 2
    assert guard.at_cap
    guard.extend(50)
    assert guard.cap == 52 and not guard.at_cap


async def test_third_identical_call_carries_a_warning(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [read("a")]},
            {"tool_calls": [read("b")]},
            {"tool_calls": [read("c")]},
            {"text": "ok"},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink).reason.kind == "complete"
    outputs = [r.output for r in sink.of_type(ToolCallResult)]
    assert len(outputs) == 3
    assert "identical" not in outputs[0] and "identical" not in outputs[1]
    assert "identical Read call number 3 in a row" in outputs[2]
    # The file did not change, so the third Read says so instead of sending it again.
    assert "unchanged since you last read it" in outputs[2]
    sent = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    assert "One more identical call ends the turn" in sent[-1].content


async def test_fourth_identical_call_stops_the_turn(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [{"tool_calls": [read(f"c{i}")]} for i in range(4)] + [{"text": "never"}]
    )
    sink = await harness.turn(session, "go")
    end = end_of(sink)
    assert end.reason.kind == "error"
    assert (
        end.reason.message is not None
        and "Read" in end.reason.message
        and "4 times" in end.reason.message
    )
    assert [e.message for e in sink.of_type(Error)] == [end.reason.message]
    assert len(session.provider.requests) == 4  # type: ignore[attr-defined]
    rows = harness.store.messages.load(session.id)
    calls = [c["id"] for r in rows for c in r.tool_calls]
    results = [r.tool_call_id for r in rows if r.role == "tool"]
    assert calls == results == ["c0", "c1", "c2", "c3"]
    assert "not run" in rows[-1].content
    check_history(harness_history(harness, session))


async def test_identical_calls_in_one_reply_stop_and_close_the_rest(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [
            {"tool_calls": [read("a"), read("b"), read("c"), read("d"), read("e", "src/app.py")]},
            {"text": "x"},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink).reason.kind == "error"
    rows = harness.store.messages.load(session.id)
    results = {r.tool_call_id: r.content for r in rows if r.role == "tool"}
    assert set(results) == {"a", "b", "c", "d", "e"}
    # The three reads run together, so which one sends the text (the others say "unchanged")
    # depends on timing; one of them does.
    assert any("hello world" in results[k] for k in "abc") and "identical" in results["c"]
    assert "not run" in results["d"] and "not run" in results["e"]
    check_history(harness_history(harness, session))


async def test_a_different_call_resets_the_streak(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [read("a")]},
            {"tool_calls": [read("b")]},
            {"tool_calls": [read("x", "src/app.py")]},
            {"tool_calls": [read("c")]},
            {"tool_calls": [read("d")]},
            {"text": "fine"},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink).reason.kind == "complete"
    assert not any("identical" in r.output for r in sink.of_type(ToolCallResult))


@pytest.mark.parametrize(
    ("count", "verdict"), [(1, "ok"), (2, "ok"), (3, "warn"), (4, "stop"), (5, "stop")]
)
def test_guard_verdicts(count: int, verdict: str) -> None:
    guard = LoopGuard(10)
    call = ToolCall("x", "Read", {"path": "a", "n": [1, 2]})
    checks = [guard.check(ToolCall(str(i), call.name, dict(call.arguments))) for i in range(count)]
    assert (checks[-1].verdict, checks[-1].count) == (verdict, count)


def test_guard_fingerprint_ignores_key_order_and_recent_keeps_five() -> None:
    guard = LoopGuard(10)
    guard.check(ToolCall("1", "Grep", {"a": 1, "b": 2}))
    assert guard.check(ToolCall("2", "Grep", {"b": 2, "a": 1})).count == 2
    for name in ["A", "B", "C", "D", "E", "F"]:
        guard.check(ToolCall(name, name, {}))
    assert guard.recent_tools == ["B", "C", "D", "E", "F"]


def test_args_preview_is_cut() -> None:
    assert args_preview({"a": "x" * 500}, limit=20).endswith("…")
    assert len(args_preview({"a": "x" * 500}, limit=20)) == 20
    assert args_preview({"a": 1}) == '{"a": 1}'


def harness_history(harness: Harness, session: Any) -> list[Message]:
    from koda.engine.history import build_history

    return build_history(harness.store.messages.load(session.id))
