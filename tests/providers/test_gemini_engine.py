"""The Gemini adapter under the real engine: a real store, the default tools, the fake server.

Tool round trips with thought signatures, cache-friendly consecutive requests, and faults as
the engine sees them: retried when retryable (an incomplete reply never saved, its tool calls
never run), one clear sentence otherwise."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.gemini_fake import (
    SIGNATURE,
    Call,
    GeminiFake,
    Reply,
    context_overflow,
    invalid_key,
    rate_limited,
    unavailable,
)
from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.events import Error, ToolCallResult, TurnEnd, Warn
from koda.engine.session import KodaSession
from koda.engine.sink import CollectingSink
from koda.engine.trust import TrustMode
from koda.providers.gemini import GeminiProvider
from koda.providers.hosts import HOSTS
from koda.store import Store

KEY = "AIzaSy-engine-test"
CONFIG = KodaConfig(retry_base_delay=0.01, model="gemini-2.5-flash")


@pytest.fixture
def fake() -> Iterator[GeminiFake]:
    with GeminiFake(api_key=KEY) as server:
        yield server


@pytest.fixture
async def session(fake: GeminiFake, store: Store, project: Path) -> Any:
    provider = GeminiProvider(HOSTS["gemini"], api_key=KEY, base_url=fake.url)
    agent = KodaAgent.create(project)
    yield KodaSession.create(agent, store, provider, TrustMode.AUTO, CONFIG)
    await provider.aclose()


async def turn(session: KodaSession, prompt: str, config: KodaConfig = CONFIG) -> CollectingSink:
    session.add_user_message(prompt)
    sink = CollectingSink()
    await asyncio.wait_for(session.run_turn(config, [], sink, asyncio.Queue()), 20)
    return sink


def end(sink: CollectingSink) -> TurnEnd:
    last = sink.events[-1]
    assert isinstance(last, TurnEnd)
    return last


def retries(sink: CollectingSink) -> list[str]:
    return [w.message for w in sink.of_type(Warn) if "retrying" in w.message]


async def test_tool_round_trip_echoes_signatures_and_only_appends(
    fake: GeminiFake, session: KodaSession
) -> None:
    fake.push(
        Reply(thinking="I need the file.", thoughts_tokens=9,
              tool_calls=[Call("Read", {"path": "hello.txt"}, SIGNATURE)]),
        Reply(text="It says hello world.", signature=SIGNATURE, signature_on="first_text"),
        Reply(text="You're welcome."),
    )  # fmt: skip
    sink = await turn(session, "What does hello.txt say?")
    assert end(sink).reason.kind == "complete", sink.events
    [result] = sink.of_type(ToolCallResult)
    assert result.ok and "hello world" in result.output
    assert sink.text() == "It says hello world."
    await turn(session, "Thanks!")

    first, second, third = (p.json for p in fake.posts)
    model_turn = second["contents"][1]
    assert model_turn == {
        "role": "model",
        "parts": [{"functionCall": {"name": "Read", "args": {"path": "hello.txt"}},
                   "thoughtSignature": SIGNATURE}],
    }  # fmt: skip
    [response] = second["contents"][2]["parts"]
    assert response["functionResponse"]["name"] == "Read"
    assert "hello world" in response["functionResponse"]["response"]["output"]
    # The answer's signature comes back on its text part; the thinking text never does.
    assert third["contents"][3] == {
        "role": "model",
        "parts": [{"text": "It says hello world.", "thoughtSignature": SIGNATURE}],
    }
    assert "I need the file." not in json.dumps(third)
    # Cache-friendly: each request starts with the previous one's contents, byte for byte.
    for before, after in ((first, second), (second, third)):
        n = len(before["contents"])
        assert json.dumps(after["contents"][:n]) == json.dumps(before["contents"])
        assert after["systemInstruction"] == before["systemInstruction"]
        assert after["tools"] == before["tools"]
    usage = session.db.messages.load(session.id)[1].usage
    assert usage["thinking"] == 9 and usage["completion"] == 19


async def test_rate_limit_is_retried_after_gemini_retry_delay(
    fake: GeminiFake, session: KodaSession
) -> None:
    fake.push(rate_limited(retry_delay="0.3s"), Reply(text="made it"))
    t0 = time.monotonic()
    sink = await turn(session, "hi")
    assert end(sink).reason.kind == "complete"
    assert time.monotonic() - t0 >= 0.3  # the RetryInfo delay, not the 0.01 s base
    [warning] = retries(sink)
    assert "You exceeded your current quota" in warning and "0.3s" in warning
    assert sink.text() == "made it"
    assert fake.posts[0].raw == fake.posts[1].raw


async def test_overloaded_is_retried(fake: GeminiFake, session: KodaSession) -> None:
    fake.push(unavailable(), unavailable(), Reply(text="ok"))
    sink = await turn(session, "hi")
    assert end(sink).reason.kind == "complete" and len(retries(sink)) == 2


@pytest.mark.parametrize(
    "broken",
    [
        {"drop_after": 3},  # connection closed after the text and the call
        {"drop_after": 4},  # ... after the finish reason too, but never ended cleanly
        {"end_after": 3},  # a clean end without the finish reason
        {"malformed_at": 2},  # the chunk with the call is broken JSON
    ],
)
async def test_a_broken_stream_is_retried_and_its_tool_call_never_runs(
    fake: GeminiFake, session: KodaSession, project: Path, broken: dict[str, Any]
) -> None:
    write = Call("Write", {"path": "broken.txt", "content": "should never exist"})
    fake.push(
        Reply(text="Writing it now.", chunk_size=8, tool_calls=[write], calls_apart=True, **broken),
        Reply(text="Let me stop here."),
    )
    assert len(fake.replies[0].events()) == 4  # two text chunks, the call, the finish
    sink = await turn(session, "write the file")
    assert end(sink).reason.kind == "complete"
    assert len(retries(sink)) == 1
    assert not (project / "broken.txt").exists()
    assert not sink.of_type(ToolCallResult)
    rows = session.db.messages.load(session.id, include_incomplete=True)
    assistant = [r for r in rows if r.role == "assistant"]
    assert [(r.content, r.tool_calls, r.is_complete) for r in assistant] == [
        ("Let me stop here.", [], True)
    ]
    assert fake.posts[0].raw == fake.posts[1].raw


@pytest.mark.parametrize(
    ("fault", "words"),
    [(invalid_key(), "gemini rejected the API key (API key not valid. Please pass a valid API "
                     "key.). Check the key, or run `koda auth login gemini`."),
     (Reply(text="Unsafe", finish_reason="SAFETY"), "gemini stopped the reply for safety reasons")],
)  # fmt: skip
async def test_errors_end_the_turn_with_one_sentence(
    fake: GeminiFake, session: KodaSession, fault: Reply, words: str
) -> None:
    fake.push(fault)
    sink = await turn(session, "hi")
    assert end(sink).reason.kind == "error"
    [error] = sink.of_type(Error)
    assert error.message == words
    assert not retries(sink) and len(fake.posts) == 1


async def test_context_overflow_stops_the_turn(fake: GeminiFake, session: KodaSession) -> None:
    fake.push(context_overflow(1_500_000))
    sink = await turn(session, "hi")
    [error] = sink.of_type(Error)
    assert end(sink).reason.kind == "error" and not retries(sink)
    assert "context window" in error.message
    assert "The input token count (1500000) exceeds the maximum number" in error.message


async def test_slow_first_token_under_the_engine(fake: GeminiFake, session: KodaSession) -> None:
    fake.push(Reply(text="patience pays", first_delay=0.5, delay=0.02, chunk_size=3))
    sink = await turn(session, "hi")
    assert end(sink).reason.kind == "complete" and sink.text() == "patience pays"
    assert not retries(sink)
