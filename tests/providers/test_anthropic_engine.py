"""The Anthropic adapter under the real engine: a real store, the default tools, the fake server.

Tool use goes round trip; retryable faults are retried and a broken reply is never kept as
complete nor are its tool calls run; requests in one session extend each other byte for byte.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fakes.anthropic_fake import (
    AnthropicFake,
    Call,
    Recorded,
    Reply,
    http_error,
    overloaded,
    rate_limited,
)
from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.events import Error, TurnEnd, Warn
from koda.engine.session import KodaSession
from koda.engine.trust import TrustMode
from koda.providers.anthropic import AnthropicProvider
from koda.providers.hosts import HOSTS
from koda.store import Store

if TYPE_CHECKING:
    from conftest import Harness

FAST = KodaConfig(retry_base_delay=0.01)


@pytest.fixture
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake() as server:
        yield server


@pytest.fixture
async def provider(fake: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(HOSTS["anthropic"], api_key="sk-ant-test", base_url=fake.url)
    yield p
    await p.aclose()


def new_session(
    store: Store, project: Path, provider: AnthropicProvider, config: KodaConfig = FAST
) -> KodaSession:
    return KodaSession.create(KodaAgent.create(project), store, provider, TrustMode.AUTO, config)


def end_of(sink: Any) -> TurnEnd:
    end = sink.events[-1]
    assert isinstance(end, TurnEnd)
    return end


def completed_assistant_texts(store: Store, session: KodaSession) -> list[str]:
    rows = store.messages.load(session.id, include_incomplete=True)
    return [r.content for r in rows if r.role == "assistant" and r.is_complete]


def _strip_cache(message: dict[str, Any]) -> dict[str, Any]:
    return {
        **message,
        "content": [
            {k: v for k, v in b.items() if k != "cache_control"} for b in message["content"]
        ],
    }


def assert_extends(earlier: Recorded, later: Recorded) -> None:
    """`later` repeats `earlier`'s system, tools and messages byte for byte, the last message
    differing at most by the tail cache breakpoint that has moved on."""
    a, b = earlier.json, later.json
    assert json.dumps(a["system"]) == json.dumps(b["system"])
    assert json.dumps(a["tools"]) == json.dumps(b["tools"])
    n = len(a["messages"])
    assert len(b["messages"]) > n
    assert json.dumps(b["messages"][: n - 1]) == json.dumps(a["messages"][: n - 1])
    assert json.dumps(b["messages"][n - 1]) == json.dumps(_strip_cache(a["messages"][n - 1]))
    assert earlier.raw.index(b'"messages":') == later.raw.index(b'"messages":')


async def test_tool_round_trip_with_thinking(
    harness: Harness, store: Store, project: Path, fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    config = KodaConfig(retry_base_delay=0.01, thinking_budget=2048)
    session = new_session(store, project, provider, config)
    fake.push(
        Reply(thinking="I should read hello.txt.", signature="sig-xyz", text="Let me look.",
              tool_calls=[Call("Read", {"path": "hello.txt"}, id="toolu_01abc")],
              input_tokens=900, cache_write=3000, output_tokens=40),
        Reply(text="It says hello world.", input_tokens=60, cache_read=3900, output_tokens=8),
        Reply(text="You're welcome."),
    )  # fmt: skip
    sink = await harness.turn(session, "What does hello.txt say?", config=config)
    assert end_of(sink).reason.kind == "complete", sink.of_type(Error)
    assert "It says hello world." in sink.text()

    first, second = fake.message_requests()
    assert first.json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assistant, results = second.json["messages"][1:]
    assert [b["type"] for b in assistant["content"]] == ["thinking", "text", "tool_use"]
    assert assistant["content"][0] == {
        "type": "thinking", "thinking": "I should read hello.txt.", "signature": "sig-xyz",
    }  # fmt: skip
    assert assistant["content"][2]["id"] == "toolu_01abc"
    [result] = results["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_01abc"
    assert "hello world" in result["content"]
    assert_extends(first, second)

    rows = store.messages.load(session.id)
    reply_row = next(r for r in rows if r.role == "assistant")
    assert (reply_row.thinking_signature or "").endswith("sig-xyz")  # stored tagged by wire
    assert reply_row.usage["prompt"] == 900 and reply_row.usage["cache_write"] == 3000

    sink = await harness.turn(session, "thanks", config=config)
    assert end_of(sink).reason.kind == "complete"
    third = fake.message_requests()[2]
    assert_extends(second, third)
    assert third.json["messages"][-1]["content"][-1]["text"] == "thanks"


async def test_rate_limit_with_retry_after_is_retried(
    harness: Harness, store: Store, project: Path, fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    session = new_session(store, project, provider)
    fake.push(rate_limited(retry_after=0.3, message="slow down"), Reply(text="made it"))
    t0 = time.monotonic()
    sink = await harness.turn(session, "hi")
    assert end_of(sink).reason.kind == "complete"
    assert time.monotonic() - t0 >= 0.3
    assert any("slow down" in w.message and "retrying" in w.message for w in sink.of_type(Warn))
    first, second = fake.message_requests()
    assert first.raw == second.raw  # the retry sends the very same bytes
    assert completed_assistant_texts(store, session) == ["made it"]


@pytest.mark.parametrize(
    "fault",
    [
        {"drop_after": 15},  # connection lost after the tool call, before message_delta
        {"end_after": 16},  # stream ended without message_stop
        {"malformed_at": 16},  # message_stop unreadable
        {"error_event_after": 15, "error_type": "overloaded_error"},
    ],
)
async def test_a_broken_reply_is_retried_and_its_tool_call_never_runs(
    harness: Harness,
    store: Store,
    project: Path,
    fake: AnthropicFake,
    provider: AnthropicProvider,
    fault: dict[str, Any],
) -> None:
    session = new_session(store, project, provider)
    call = Call("Write", {"path": "marker.txt", "content": "ran"}, id="toolu_w")
    fake.push(Reply(text="Running it.", tool_calls=[call], chunk_size=4, **fault),
              Reply(text="Nothing to do after all."))  # fmt: skip
    sink = await harness.turn(session, "make the marker")
    assert end_of(sink).reason.kind == "complete", sink.of_type(Error)
    assert not (project / "marker.txt").exists()
    assert completed_assistant_texts(store, session) == ["Nothing to do after all."]
    first, second = fake.message_requests()
    assert first.raw == second.raw
    assert len(fake.message_requests()) == 2


async def test_overloaded_until_attempts_run_out(
    harness: Harness, store: Store, project: Path, fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    config = KodaConfig(retry_base_delay=0.01, retry_attempts=2)
    session = new_session(store, project, provider, config)
    fake.push(overloaded(), overloaded(), Reply(text="too late"))
    sink = await harness.turn(session, "hi", config=config)
    end = end_of(sink)
    message = end.reason.message or ""
    assert end.reason.kind == "error"
    assert "overloaded" in message and "529" in message
    assert len(fake.message_requests()) == 2


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (401, "authentication_error", "rejected the API key"),
        (404, "not_found_error", "no such model"),
        (400, "invalid_request_error", "rejected the request"),
    ],
)
async def test_error_bodies_end_the_turn_with_one_sentence(
    harness: Harness,
    store: Store,
    project: Path,
    fake: AnthropicFake,
    provider: AnthropicProvider,
    status: int,
    error_type: str,
    words: str,
) -> None:
    session = new_session(store, project, provider)
    fake.push(http_error(status, error_type, "the detail"), Reply(text="never asked"))
    sink = await harness.turn(session, "hi")
    end = end_of(sink)
    message = end.reason.message or ""
    assert end.reason.kind == "error"
    assert words in message and "the detail" in message
    assert "Traceback" not in message and "\n" not in message
    assert len(fake.message_requests()) == 1  # not retried
    assert completed_assistant_texts(store, session) == []
