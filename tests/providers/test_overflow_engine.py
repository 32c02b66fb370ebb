"""Context overflow through the real engine, for each vendor's adapter and fake server.

A session with earlier turns (one with a tool call) sends a request the vendor refuses with its
own context-overflow error. The engine then compacts: one summary request to the same server,
without tools, and one retry of the turn's request, which the server must accept; it is much
shorter, carries the summary and ends with the user's current prompt. A second overflow in the
same turn ends it with an error sentence, without another compaction or retry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fakes import anthropic_fake, gemini_fake, openai_fake
from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.compaction import INSTRUCTIONS, SUMMARY_HEADER
from koda.engine.events import Error, Info, ToolCallResult, TurnEnd
from koda.engine.session import KodaSession
from koda.engine.sink import CollectingSink
from koda.engine.trust import TrustMode
from koda.providers.anthropic import AnthropicProvider
from koda.providers.base import LlmProvider
from koda.providers.gemini import GeminiProvider
from koda.providers.hosts import HOSTS
from koda.providers.openai_compat import OpenAICompatProvider
from koda.store import Store

# Thinking on: Anthropic's retried tool loop must still begin with its signed thinking block.
CONFIG = KodaConfig(retry_base_delay=0.01, thinking_budget=2048)
GEMINI_KEY = "AIzaSy-overflow-test"
CURRENT = "Now sum the project up in one line."
SUMMARY = "SUMMARY-7f3a: the user read hello.txt (it says hello world) and asked about app.py."
LONG_ANSWER = " ".join(f"Paragraph {i} explains the file in much detail." for i in range(80))


@dataclass(frozen=True)
class Vendor:
    """One vendor's fake, adapter and request shape, as the tests below need them."""

    name: str
    server: Callable[[], AbstractContextManager[Any]]
    provider: Callable[[Any], LlmProvider]
    text: Callable[[str], Any]  # a scripted plain answer
    read_call: Callable[[], Any]  # a scripted answer calling Read on hello.txt
    overflow: Callable[[], Any]  # the vendor's own context-overflow error
    bodies: Callable[[Any], list[dict[str, Any]]]
    messages: Callable[[dict[str, Any]], list[Any]]  # the conversation part of a body
    has_tools: Callable[[dict[str, Any]], bool]
    user_text: Callable[[Any], str]  # the text of a user message
    rejected: Callable[[Any], list[Any]]
    pending: Callable[[Any], int]


def _anthropic_text(message: dict[str, Any]) -> str:
    assert message["role"] == "user"
    return "".join(b.get("text", "") for b in message["content"])


def _openai_text(message: dict[str, Any]) -> str:
    assert message["role"] == "user"
    return str(message["content"])


def _gemini_text(content: dict[str, Any]) -> str:
    assert content["role"] == "user"
    return "".join(p.get("text", "") for p in content["parts"])


VENDORS = [
    Vendor(
        "anthropic",
        anthropic_fake.AnthropicFake,
        lambda f: AnthropicProvider(HOSTS["anthropic"], api_key="sk-ant-test", base_url=f.url),
        lambda t: anthropic_fake.Reply(text=t),
        lambda: anthropic_fake.Reply(
            thinking="I should read it.",
            signature="EqQBoverflowSig",
            text="Reading it.",
            tool_calls=[anthropic_fake.Call("Read", {"path": "hello.txt"})],
        ),
        anthropic_fake.prompt_too_long,
        lambda f: [r.json for r in f.message_requests()],
        lambda b: b["messages"],
        lambda b: "tools" in b,
        _anthropic_text,
        lambda f: f.rejected,
        lambda f: f.pending,
    ),
    Vendor(
        "openai",
        openai_fake.OpenAIFake,
        lambda f: OpenAICompatProvider(HOSTS["openai"], api_key="sk-test", base_url=f.base_url),
        lambda t: openai_fake.Reply(text=t),
        lambda: openai_fake.Reply(
            text="Reading it.", tool_calls=[openai_fake.Call("Read", {"path": "hello.txt"})]
        ),
        openai_fake.context_overflow,
        lambda f: list(f.chat_bodies),
        lambda b: [m for m in b["messages"] if m["role"] != "system"],
        lambda b: "tools" in b,
        _openai_text,
        lambda f: f.rejected,
        lambda f: len(f.replies),
    ),
    Vendor(
        "gemini",
        lambda: gemini_fake.GeminiFake(api_key=GEMINI_KEY),
        lambda f: GeminiProvider(HOSTS["gemini"], api_key=GEMINI_KEY, base_url=f.url),
        lambda t: gemini_fake.Reply(text=t),
        lambda: gemini_fake.Reply(
            text="Reading it.", tool_calls=[gemini_fake.Call("Read", {"path": "hello.txt"})]
        ),
        gemini_fake.context_overflow,
        lambda f: [r.json for r in f.posts],
        lambda b: b["contents"],
        lambda b: "tools" in b,
        _gemini_text,
        lambda f: f.rejected,
        lambda f: len(f.replies),
    ),
]


@pytest.fixture(params=VENDORS, ids=[v.name for v in VENDORS])
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(vendor: Vendor) -> Iterator[Any]:
    with vendor.server() as server:
        yield server


@pytest.fixture
async def session(
    vendor: Vendor, fake: Any, store: Store, project: Path
) -> AsyncIterator[KodaSession]:
    provider = vendor.provider(fake)
    yield KodaSession.create(KodaAgent.create(project), store, provider, TrustMode.AUTO, CONFIG)
    await provider.aclose()


async def turn(session: KodaSession, prompt: str) -> CollectingSink:
    session.add_user_message(prompt)
    sink = CollectingSink()
    await asyncio.wait_for(session.run_turn(CONFIG, [], sink, asyncio.Queue()), 20)
    return sink


def end_of(sink: CollectingSink) -> TurnEnd:
    end = sink.events[-1]
    assert isinstance(end, TurnEnd)
    return end


async def earlier_turns(vendor: Vendor, fake: Any, session: KodaSession) -> None:
    """Two finished turns: a tool round trip with a long answer, then another long answer."""
    fake.push(vendor.read_call(), vendor.text(LONG_ANSWER), vendor.text(LONG_ANSWER))
    sink = await turn(session, "Read hello.txt and explain it.")
    assert end_of(sink).reason.kind == "complete", sink.of_type(Error)
    assert [r.ok for r in sink.of_type(ToolCallResult)] == [True]
    sink = await turn(session, "And what about src/app.py?")
    assert end_of(sink).reason.kind == "complete", sink.of_type(Error)


def size(value: Any) -> int:
    return len(json.dumps(value))


async def test_overflow_compacts_once_and_the_retry_is_accepted(
    vendor: Vendor, fake: Any, session: KodaSession
) -> None:
    await earlier_turns(vendor, fake, session)
    before = len(vendor.bodies(fake))
    fake.push(vendor.overflow(), vendor.text(SUMMARY), vendor.text("The project greets the world."))

    sink = await turn(session, CURRENT)

    assert end_of(sink).reason.kind == "complete", sink.of_type(Error)
    assert sink.text() == "The project greets the world."
    assert any("Compacted" in i.message for i in sink.of_type(Info))
    assert vendor.rejected(fake) == [] and vendor.pending(fake) == 0
    failing, summary, retried = vendor.bodies(fake)[before:]

    # The summary request: the same server, no tools, the earlier turns as a transcript.
    assert not vendor.has_tools(summary)
    assert INSTRUCTIONS.splitlines()[0] in json.dumps(summary)
    transcript = json.dumps(vendor.messages(summary))
    assert "Read hello.txt and explain it." in transcript and "hello world" in transcript
    assert "And what about src/app.py?" in transcript and "Paragraph 3 explains" in transcript
    assert CURRENT not in transcript  # the current prompt is kept word for word, not summarised

    # The retry: the turn's request again, now short, with the summary and the current prompt.
    assert vendor.has_tools(retried) and vendor.has_tools(failing)
    assert size(vendor.messages(retried)) * 5 < size(vendor.messages(failing))
    assert size(retried) < size(failing)
    [only] = vendor.messages(retried)
    text = vendor.user_text(only)
    assert text.startswith(SUMMARY_HEADER) and SUMMARY in text
    assert text.endswith(CURRENT)
    assert vendor.user_text(vendor.messages(failing)[-1]).endswith(CURRENT)
    assert "Paragraph 79" not in json.dumps(retried)

    # The next turn builds on the compacted history.
    fake.push(vendor.text("Glad to help."))
    sink = await turn(session, "Thanks!")
    assert end_of(sink).reason.kind == "complete", sink.of_type(Error)
    after = vendor.bodies(fake)[-1]
    assert size(vendor.messages(after)) < size(vendor.messages(failing))
    assert vendor.rejected(fake) == []


async def test_a_second_overflow_in_the_turn_ends_it_with_an_error(
    vendor: Vendor, fake: Any, session: KodaSession
) -> None:
    await earlier_turns(vendor, fake, session)
    before = len(vendor.bodies(fake))
    fake.push(vendor.overflow(), vendor.text(SUMMARY), vendor.overflow(), vendor.text("never"))

    sink = await turn(session, CURRENT)

    end = end_of(sink)
    message = end.reason.message or ""
    assert end.reason.kind == "error"
    assert "does not fit" in message and "compaction" in message
    assert "Traceback" not in message and "\n" not in message
    assert [e.message for e in sink.of_type(Error)] == [message]
    await asyncio.sleep(0.1)  # nothing else is sent after the turn ended
    assert len(vendor.bodies(fake)) - before == 3  # the failing request, the summary, one retry
    assert vendor.pending(fake) == 1
    assert vendor.rejected(fake) == []


async def test_an_overflow_inside_a_tool_loop_keeps_the_loop_paired(
    vendor: Vendor, fake: Any, session: KodaSession
) -> None:
    """The overflow comes after a tool call of the current turn: the call and its result stay
    word for word after the summary, still paired, and the retry is accepted."""
    await earlier_turns(vendor, fake, session)
    before = len(vendor.bodies(fake))
    fake.push(vendor.read_call(), vendor.overflow(), vendor.text(SUMMARY), vendor.text("Done."))

    sink = await turn(session, CURRENT)

    assert end_of(sink).reason.kind == "complete", (sink.of_type(Error), vendor.rejected(fake))
    assert [r.ok for r in sink.of_type(ToolCallResult)] == [True]  # the tool ran once
    assert vendor.rejected(fake) == [] and vendor.pending(fake) == 0
    _, failing, summary, retried = vendor.bodies(fake)[before:]
    assert not vendor.has_tools(summary)
    assert CURRENT not in json.dumps(vendor.messages(summary))
    prompt, call, result = vendor.messages(retried)
    text = vendor.user_text(prompt)
    assert text.startswith(SUMMARY_HEADER) and SUMMARY in text and text.endswith(CURRENT)
    # The earlier turn read hello.txt already, so this Read answered "unchanged"; paired all
    # the same (that the note outlives the compacted copy it points to is a known gap).
    assert "Read" in json.dumps(call) and "hello.txt" in json.dumps(result)
    assert size(vendor.messages(retried)) * 3 < size(vendor.messages(failing))
