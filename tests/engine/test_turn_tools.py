"""Tool calls inside a turn: results persisted and sent back, concurrency, bad calls, names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from koda.engine.events import ToolCallResult, ToolCallStart, ToolOutputLine, TurnEnd
from koda.providers.base import Message, ToolCall
from koda.tools.base import Effect, ToolContext, ToolResult
from koda.tools.catalog import ToolCatalog, default_catalog
from koda.tools.glob import Glob
from koda.tools.grep import Grep
from koda.tools.read import Read

if TYPE_CHECKING:
    from conftest import Harness

History = Callable[[list[Message]], None]


class Slow:
    """A read-only tool that sleeps for `seconds` and records when it ran."""

    name = "Slow"
    description = "Sleeps, then echoes its label."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"seconds": {"type": "number"}, "label": {"type": "string"}},
    }

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"Slow {args.get('label')}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        start = time.monotonic()
        await asyncio.sleep(float(args["seconds"]))
        self.spans.append((str(args["label"]), start, time.monotonic()))
        return ToolResult(f"slept {args['label']}")


def end_of(events: list[Any]) -> TurnEnd:
    assert isinstance(events[-1], TurnEnd)
    return events[-1]


async def test_tool_result_is_persisted_and_sent_back(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [
            {
                "text": "Let me look.",
                "tool_calls": [{"id": "r1", "name": "Read", "args": {"path": "hello.txt"}}],
            },
            {"text": "It says hello."},
        ]
    )
    sink = await harness.turn(session, "what is in hello.txt?")
    assert end_of(sink.events).reason.kind == "complete"
    [start] = sink.of_type(ToolCallStart)
    assert (start.id, start.name, start.args) == ("r1", "Read", {"path": "hello.txt"})
    [result] = sink.of_type(ToolCallResult)
    assert result.ok and "hello world" in result.output
    assert sink.events.index(start) < sink.events.index(result)

    rows = harness.store.messages.load(session.id)
    assert [r.role for r in rows] == ["user", "assistant", "tool", "assistant"]
    assert rows[1].tool_calls == [{"id": "r1", "name": "Read", "arguments": {"path": "hello.txt"}}]
    assert (rows[2].tool_call_id, rows[2].tool_name, rows[2].tool_ok) == ("r1", "Read", True)
    assert "hello world" in rows[2].content

    requests = session.provider.requests  # type: ignore[attr-defined]
    assert len(requests) == 2
    sent = requests[-1].messages
    check_history(sent)
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert sent[1].tool_calls == [ToolCall("r1", "Read", {"path": "hello.txt"})]
    assert sent[2].tool_call_id == "r1" and "hello world" in sent[2].content
    # The tool definitions go with every request.
    assert {t.name for t in requests[0].tools} >= {"Read", "Write", "Edit", "Bash", "Glob", "Grep"}


async def test_read_only_calls_run_concurrently_in_call_order(harness: Harness) -> None:
    slow = Slow()
    catalog = ToolCatalog([Read(), Glob(), Grep(), slow])
    calls = [
        {"id": "s1", "name": "Slow", "args": {"seconds": 0.5, "label": "first"}},
        {"id": "g1", "name": "Grep", "args": {"pattern": "return"}},
        {"id": "s2", "name": "Slow", "args": {"seconds": 0.5, "label": "second"}},
        {"id": "s3", "name": "Slow", "args": {"seconds": 0.05, "label": "third"}},
        {"id": "r1", "name": "Read", "args": {"path": "hello.txt"}},
        {"id": "gl", "name": "Glob", "args": {"pattern": "**/*.py"}},
    ]
    session = harness.session([{"tool_calls": calls}, {"text": "done"}], catalog=catalog)
    t0 = time.monotonic()
    sink = await harness.turn(session, "go")
    elapsed = time.monotonic() - t0
    assert end_of(sink.events).reason.kind == "complete"
    assert elapsed < 0.9, f"two 0.5 s read-only calls took {elapsed:.2f} s together"
    # They overlapped in time, and the short one finished first...
    spans = {label: (a, b) for label, a, b in slow.spans}
    assert spans["second"][0] < spans["first"][1]
    assert spans["third"][1] < spans["first"][1]
    # ...yet results are reported and stored in the order of the calls.
    ids = [c["id"] for c in calls]
    assert [e.id for e in sink.of_type(ToolCallResult)] == ids
    assert [e.id for e in sink.of_type(ToolCallStart)] == ids
    rows = [r for r in harness.store.messages.load(session.id) if r.role == "tool"]
    assert [r.tool_call_id for r in rows] == ids
    assert all(r.tool_ok for r in rows), [r.content for r in rows]
    assert "src/app.py" in rows[1].content
    assert "hello world" in rows[4].content
    assert "app.py" in rows[5].content
    sent = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    assert [m.tool_call_id for m in sent if m.role == "tool"] == ids


async def test_mutating_call_splits_read_only_batches(harness: Harness) -> None:
    slow = Slow()
    catalog = ToolCatalog([*[t for t in default_tools()], slow])
    calls = [
        {"id": "a", "name": "Slow", "args": {"seconds": 0.2, "label": "before"}},
        {"id": "w", "name": "Write", "args": {"path": "out.txt", "content": "x"}},
        {"id": "b", "name": "Slow", "args": {"seconds": 0.01, "label": "after"}},
    ]
    session = harness.session([{"tool_calls": calls}, {"text": "ok"}], catalog=catalog)
    sink = await harness.turn(session, "go")
    assert end_of(sink.events).reason.kind == "complete"
    assert [e.id for e in sink.of_type(ToolCallResult)] == ["a", "w", "b"]
    # The write waited for the read before it, and the read after it waited for the write.
    assert [label for label, _, _ in slow.spans] == ["before", "after"]
    assert (harness.project / "out.txt").read_text() == "x"


def default_tools() -> list[Any]:
    catalog = default_catalog()
    return [catalog.get(n) for n in catalog.names()]


async def test_unknown_tool_gives_an_error_result(harness: Harness, check_history: History) -> None:
    session = harness.session(
        [
            {"tool_calls": [{"id": "u1", "name": "Frobnicate", "args": {"x": 1}}]},
            {"text": "I will use a real tool."},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink.events).reason.kind == "complete"
    [result] = sink.of_type(ToolCallResult)
    assert not result.ok
    assert "Unknown tool 'Frobnicate'" in result.output and "Read" in result.output
    sent = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    check_history(sent)
    assert sent[-1].tool_call_id == "u1" and "Unknown tool" in sent[-1].content
    row = next(r for r in harness.store.messages.load(session.id) if r.role == "tool")
    assert row.tool_ok is False


async def test_non_object_arguments_give_an_error_result(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "n1", "name": "Read", "args": ["hello.txt"]},
                    {"id": "n2", "name": "Write", "args": "just a string"},
                    {"id": "n3", "name": "Read", "args": None},
                ]
            },
            {"text": "Sorry."},
        ],
        mode="safe",
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink.events).reason.kind == "complete"
    results = sink.of_type(ToolCallResult)
    assert [r.id for r in results] == ["n1", "n2", "n3"]
    assert not any(r.ok for r in results)
    assert all("JSON object" in r.output for r in results), [r.output for r in results]
    sent = session.provider.requests[-1].messages  # type: ignore[attr-defined]
    check_history(sent)


async def test_tool_names_are_normalised(harness: Harness) -> None:
    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "a", "name": "read", "args": {"path": "hello.txt"}},
                    {"id": "b", "name": "read_file", "args": {"path": "src/app.py"}},
                    {"id": "c", "name": "GLOB", "args": {"pattern": "*.txt"}},
                ]
            },
            {"text": "read them"},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink.events).reason.kind == "complete"
    results = sink.of_type(ToolCallResult)
    assert all(r.ok for r in results), [r.output for r in results]
    assert "hello world" in results[0].output
    assert "return 42" in results[1].output
    assert "hello.txt" in results[2].output


async def test_tool_error_from_a_real_tool_is_an_error_result(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [{"id": "m", "name": "Read", "args": {"path": "missing.txt"}}]},
            {"text": "it is missing"},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink.events).reason.kind == "complete"
    [result] = sink.of_type(ToolCallResult)
    assert not result.ok and "not found" in result.output.lower()


async def test_bash_output_lines_stream_as_events(harness: Harness) -> None:
    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "b", "name": "Bash", "args": {"command": "echo one; echo two >&2"}}
                ]
            },
            {"text": "ran"},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink.events).reason.kind == "complete"
    lines = {(e.line, e.stream) for e in sink.of_type(ToolOutputLine) if e.id == "b"}
    assert lines == {("one", "stdout"), ("two", "stderr")}
    [result] = sink.of_type(ToolCallResult)
    assert result.ok and "one" in result.output


async def test_several_tool_rounds_keep_history_valid(
    harness: Harness, check_history: History
) -> None:
    session = harness.session(
        [
            {"tool_calls": [{"id": "1", "name": "Read", "args": {"path": "hello.txt"}}]},
            {
                "tool_calls": [
                    {"id": "2", "name": "Write", "args": {"path": "n.txt", "content": "new"}}
                ]
            },
            {"tool_calls": [{"id": "3", "name": "Read", "args": {"path": "n.txt"}}]},
            {"text": "all done"},
        ]
    )
    sink = await harness.turn(session, "go")
    assert end_of(sink.events).reason.kind == "complete"
    requests = session.provider.requests  # type: ignore[attr-defined]
    assert [len(r.messages) for r in requests] == [1, 3, 5, 7]
    for r in requests:
        check_history(r.messages)
    assert "new" in requests[-1].messages[-1].content
    assert harness.store.sessions.owned_files(session.id) == {
        str((harness.project / "n.txt").resolve())
    }
