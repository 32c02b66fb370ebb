"""The real engine over OpenAICompatProvider and the fake server: tool round trips, retries of
faults (the broken reply never kept, its tool call never run), clear errors, cache-friendly
requests."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.openai_fake import (
    Call,
    OpenAIFake,
    Reply,
    chunk_events,
    error_reply,
    rate_limited,
)
from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.commands import EngineCommand
from koda.engine.events import (
    Error,
    ReplyDiscarded,
    TextDelta,
    ToolCallResult,
    ToolCallStart,
    TurnEnd,
    Warn,
)
from koda.engine.session import KodaSession
from koda.engine.sink import CollectingSink
from koda.engine.trust import TrustMode
from koda.providers.hosts import HOSTS
from koda.providers.openai_compat import OpenAICompatProvider
from koda.store import Store

FAST = KodaConfig(retry_base_delay=0.01)


@pytest.fixture
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake() as server:
        yield server


class Run:
    def __init__(self, fake: OpenAIFake, store: Store, project: Path) -> None:
        self.fake = fake
        self.store = store
        self.provider = OpenAICompatProvider(
            HOSTS["openai"], api_key="test", base_url=fake.base_url
        )
        agent = KodaAgent.create(project)
        self.session = KodaSession.create(agent, store, self.provider, TrustMode.AUTO, FAST)

    async def turn(self, prompt: str, config: KodaConfig = FAST) -> CollectingSink:
        self.session.add_user_message(prompt)
        sink = CollectingSink()
        commands: asyncio.Queue[EngineCommand] = asyncio.Queue()
        await asyncio.wait_for(self.session.run_turn(config, [], sink, commands), 20)
        return sink

    def rows(self) -> list[tuple[str, str]]:
        return [(r.role, r.content) for r in self.store.messages.load(self.session.id)]


@pytest.fixture
async def run(fake: OpenAIFake, store: Store, project: Path) -> Run:
    r = Run(fake, store, project)
    yield r  # type: ignore[misc]
    await r.provider.aclose()


def end_of(sink: CollectingSink) -> TurnEnd:
    end = sink.events[-1]
    assert isinstance(end, TurnEnd)
    return end


def retry_warnings(sink: CollectingSink) -> list[str]:
    return [w.message for w in sink.of_type(Warn) if "retrying" in w.message]


async def test_tool_use_round_trip_through_the_engine(run: Run) -> None:
    run.fake.push(
        Reply(text="I'll read it.", tool_calls=[Call("Read", {"path": "hello.txt"})]),
        Reply(text="It says hello world.", prompt_tokens=120, cached_tokens=100),
    )
    sink = await run.turn("what does hello.txt say?")
    assert end_of(sink).reason.kind == "complete"
    [start] = sink.of_type(ToolCallStart)
    assert (start.name, start.args) == ("Read", {"path": "hello.txt"})
    [result] = sink.of_type(ToolCallResult)
    assert result.ok and "hello world" in result.output
    assert "".join(e.text for e in sink.of_type(TextDelta)) == "I'll read it.It says hello world."
    second = run.fake.chat_bodies[1]
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "Read",
        "arguments": json.dumps({"path": "hello.txt"}),
    }
    assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "hello world" in tool["content"]
    assert [role for role, _ in run.rows()] == ["user", "assistant", "tool", "assistant"]


async def test_requests_in_a_session_only_append(run: Run) -> None:
    run.fake.push(
        Reply(text="Reading.", tool_calls=[Call("Read", {"path": "hello.txt"})]),
        Reply(text="Done."),
        Reply(text="Second turn answer."),
    )
    await run.turn("read hello.txt")
    await run.turn("and now?")
    bodies = run.fake.chat_bodies
    assert len(bodies) == 3
    for before, after in itertools.pairwise(bodies):
        n = len(before["messages"])
        assert len(after["messages"]) > n
        assert json.dumps(after["messages"][:n]) == json.dumps(before["messages"])
        assert after["tools"] == before["tools"]
        assert after["messages"][0] == before["messages"][0]  # the system prompt
        assert after["messages"][0]["role"] == "system"
    raw = [r.raw for r in run.fake.requests if r.path.endswith("/chat/completions")]
    tools_bytes = [json.dumps(json.loads(b)["tools"]).encode() for b in raw]
    assert len(set(tools_bytes)) == 1


async def test_rate_limit_with_retry_after_is_retried_then_succeeds(run: Run) -> None:
    run.fake.push(rate_limited(0.3), Reply(text="made it"))
    t0 = time.monotonic()
    sink = await run.turn("hi")
    assert time.monotonic() - t0 >= 0.3  # the server's retry-after, not the 0.01 s base delay
    assert end_of(sink).reason.kind == "complete"
    [warning] = retry_warnings(sink)
    assert "rate limiting" in warning and "Rate limit reached" in warning
    assert len(run.fake.chat_bodies) == 2
    assert run.fake.chat_bodies[0] == run.fake.chat_bodies[1]
    assert run.rows()[-1] == ("assistant", "made it")


def _events_before_finish(reply: Reply) -> int:
    """How many events precede the finish chunk (so a drop there loses only the ending)."""
    return len(chunk_events(reply, "gpt-4.1", include_usage=True)) - 2


@pytest.mark.parametrize("fault", ["dropped", "malformed", "no-done"])
async def test_a_broken_stream_is_retried_and_never_kept_or_acted_on(
    run: Run, project: Path, fault: str
) -> None:
    target = project / "written.txt"
    broken = Reply(
        text="Partial answer that must not be saved.",
        tool_calls=[Call("Write", {"path": "written.txt", "content": "should not exist"})],
    )
    if fault == "dropped":
        broken.drop_after = _events_before_finish(broken)
    elif fault == "malformed":
        broken.malformed_at = _events_before_finish(broken)  # the finish chunk itself
    else:
        broken.done = False
    run.fake.push(broken, Reply(text="The whole answer."))
    sink = await run.turn("write it")
    assert end_of(sink).reason.kind == "complete"
    assert not target.exists()
    assert not sink.of_type(ToolCallStart)
    assert len(retry_warnings(sink)) == 1
    assert sink.of_type(ReplyDiscarded)
    assert run.rows() == [("user", "write it"), ("assistant", "The whole answer.")]
    # The retry carries the same history: nothing of the broken reply went back to the model.
    first, second = run.fake.chat_bodies
    assert first["messages"] == second["messages"]


async def test_error_bodies_end_the_turn_with_one_clear_sentence(run: Run) -> None:
    run.fake.push(error_reply(401, "Incorrect API key provided: test.", "invalid_api_key"))
    sink = await run.turn("hi")
    end = end_of(sink)
    assert end.reason.kind == "error"
    [error] = sink.of_type(Error)
    message = error.message
    assert "Incorrect API key provided" in message and "rejected the API key" in message
    assert "\n" not in message and "Traceback" not in message
    assert len(run.fake.chat_bodies) == 1  # not retried


async def test_a_model_that_does_not_exist(run: Run) -> None:
    run.fake.push(
        error_reply(404, "The model `gpt-4.1` does not exist or you do not have access to it.")
    )
    sink = await run.turn("hi")
    [error] = sink.of_type(Error)
    assert "does not exist" in error.message and "--model" in error.message
    assert "\n" not in error.message


async def test_the_engine_probes_the_model_list_once(run: Run) -> None:
    run.fake.models = [{"id": "gpt-4.1", "object": "model", "context_length": 50_000}]
    run.fake.push(Reply(text="one"), Reply(text="two"))
    await run.turn("a")
    await run.turn("b")
    assert [r.path for r in run.fake.requests].count("/v1/models") == 1
    assert run.provider.capabilities("gpt-4.1").context_window == 50_000
