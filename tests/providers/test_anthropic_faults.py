"""How the Anthropic adapter reads broken, failing and slow streams: every fault becomes the
right ProviderError with one sentence, and a stream without message_stop never yields Done."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from fakes.anthropic_fake import (
    AnthropicFake,
    Call,
    Reply,
    http_error,
    overloaded,
    prompt_too_long,
    rate_limited,
)
from koda.providers.anthropic import AnthropicProvider
from koda.providers.base import (
    AuthError,
    ChatRequest,
    ContextOverflowError,
    DoneChunk,
    Message,
    NetworkError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    StreamChunk,
    TextChunk,
    ToolCallChunk,
)
from koda.providers.hosts import HOSTS

REQUEST = ChatRequest("claude-sonnet-4-6", "sys", [Message("user", "hi")], [], max_tokens=1024)


@pytest.fixture
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake() as server:
        yield server


@pytest.fixture
async def provider(fake: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(HOSTS["anthropic"], api_key="k", base_url=fake.url)
    yield p
    await p.aclose()


async def collect(provider: AnthropicProvider, seen: list[StreamChunk]) -> None:
    async for chunk in provider.stream(REQUEST):
        seen.append(chunk)


def assert_one_sentence(exc: ProviderError) -> None:
    assert exc.message and "\n" not in exc.message and "Traceback" not in exc.message


# -- HTTP errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "cls", "words"),
    [
        (overloaded(), OverloadedError, "overloaded or failing (HTTP 529) (Overloaded)"),
        (http_error(500, "api_error", "Internal server error"), OverloadedError, "HTTP 500"),
        (prompt_too_long(), ContextOverflowError, "prompt is too long: 215034 tokens"),
        (http_error(401, "authentication_error", "invalid x-api-key"), AuthError,
         "rejected the API key (HTTP 401) (invalid x-api-key)"),
        (http_error(403, "permission_error", "no access"), AuthError, "refused access"),
        (http_error(404, "not_found_error", "model: claude-nope"), ProviderError,
         "no such model or endpoint (HTTP 404) (model: claude-nope)"),
        (http_error(400, "invalid_request_error", "messages: roles must alternate"),
         ProviderError, "rejected the request (HTTP 400) (messages: roles must alternate)"),
    ],
)  # fmt: skip
async def test_http_errors(
    fake: AnthropicFake,
    provider: AnthropicProvider,
    reply: Reply,
    cls: type[ProviderError],
    words: str,
) -> None:
    fake.push(reply)
    seen: list[StreamChunk] = []
    with pytest.raises(ProviderError) as info:
        await collect(provider, seen)
    assert type(info.value) is cls
    assert words in info.value.message
    assert info.value.message.startswith(("anthropic", "the conversation"))
    assert_one_sentence(info.value)
    assert seen == []


async def test_rate_limit_carries_retry_after(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.push(rate_limited(retry_after=7))
    with pytest.raises(RateLimitError) as info:
        await collect(provider, [])
    assert info.value.retryable and info.value.retry_after == 7.0
    assert "rate limiting" in info.value.message


async def test_a_refused_local_gateway_is_said_at_once() -> None:
    provider = AnthropicProvider(HOSTS["anthropic"], api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(ProviderError, match="Is the server running") as info:
        await collect(provider, [])
    assert not info.value.retryable
    assert_one_sentence(info.value)
    await provider.aclose()


# -- errors inside the stream -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "message", "cls"),
    [
        ("overloaded_error", "Overloaded", OverloadedError),
        ("rate_limit_error", "Number of request tokens has exceeded your rate limit",
         RateLimitError),
        ("api_error", "Internal server error", OverloadedError),
        ("invalid_request_error", "prompt is too long: 201000 tokens > 200000 maximum",
         ContextOverflowError),
        ("invalid_request_error", "something else is wrong", ProviderError),
        ("authentication_error", "invalid x-api-key", AuthError),
    ],
)  # fmt: skip
async def test_error_events(
    fake: AnthropicFake,
    provider: AnthropicProvider,
    error_type: str,
    message: str,
    cls: type[ProviderError],
) -> None:
    fake.push(Reply(text="some words first", error_event_after=5, error_type=error_type,
                    error_message=message))  # fmt: skip
    seen: list[StreamChunk] = []
    with pytest.raises(ProviderError) as info:
        await collect(provider, seen)
    assert type(info.value) is cls and message in info.value.message
    assert_one_sentence(info.value)
    assert any(isinstance(c, TextChunk) for c in seen)
    assert not any(isinstance(c, DoneChunk) for c in seen)


# -- broken streams: never a DoneChunk --------------------------------------------------------


TOOL_REPLY = dict(text="Running it.", tool_calls=[Call("Bash", {"command": "ls"}, id="toolu_1")])


@pytest.mark.parametrize(
    "fault",
    [
        {"drop_after": 3},  # socket closed mid-text
        {"drop_after": 11},  # socket closed mid tool input
        {"drop_after": 15},  # socket closed after the tool call, before message_delta
        {"end_after": 15},  # body ends cleanly, but without message_delta / message_stop
        {"end_after": 16},  # message_delta came, message_stop did not
        {"malformed_at": 4},  # a text delta that is not JSON
        {"malformed_at": 16},  # message_stop itself broken
    ],
)
async def test_incomplete_or_malformed_streams_raise_network_error(
    fake: AnthropicFake, provider: AnthropicProvider, fault: dict[str, int]
) -> None:
    fake.push(Reply(**TOOL_REPLY, chunk_size=4, **fault))  # type: ignore[arg-type]
    seen: list[StreamChunk] = []
    with pytest.raises(NetworkError) as info:
        await collect(provider, seen)
    assert info.value.retryable
    assert_one_sentence(info.value)
    assert not any(isinstance(c, DoneChunk) for c in seen)


async def test_the_fault_offsets_above_are_where_they_claim(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    """The whole reply is 17 events: start, ping, text (start, 3 deltas, stop), tool_use (start,
    6 deltas, stop), message_delta, message_stop; so the offsets above hit what they say."""
    from fakes.anthropic_fake import build_events

    events = build_events(Reply(**TOOL_REPLY, chunk_size=4), "m")  # type: ignore[arg-type]
    names = [e[0] for e in events]
    assert len(names) == 17 and names[14] == "content_block_stop"
    assert names[15:] == ["message_delta", "message_stop"] and names[11] == "content_block_delta"
    fake.push(Reply(**TOOL_REPLY, chunk_size=4))  # type: ignore[arg-type]
    seen: list[StreamChunk] = []
    await collect(provider, seen)
    assert isinstance(seen[-1], DoneChunk) and seen[-1].stop_reason == "tool_use"


async def test_invalid_tool_json_is_malformed(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.push(Reply(tool_calls=[Call("Bash", '{"command": "ls"', id="toolu_1")]))
    seen: list[StreamChunk] = []
    with pytest.raises(NetworkError, match="Bash"):
        await collect(provider, seen)
    assert not any(isinstance(c, ToolCallChunk | DoneChunk) for c in seen)


async def test_tool_input_cut_by_max_tokens_is_dropped_not_retried(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.push(
        Reply(
            text="Writing.",
            tool_calls=[
                Call("Read", {"path": "a"}, id="toolu_1"),
                Call("Write", '{"path": "b", "content": "very lo', id="toolu_2"),
            ],
            stop_reason="max_tokens",
        )
    )
    seen: list[StreamChunk] = []
    await collect(provider, seen)
    calls = [c.call.name for c in seen if isinstance(c, ToolCallChunk)]
    assert calls == ["Read"]
    assert isinstance(seen[-1], DoneChunk) and seen[-1].stop_reason == "max_tokens"


@pytest.mark.parametrize(
    "events",
    [
        # a delta before message_start
        [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "text_delta", "text": "x"}})],
        # a delta for a block that was never started
        [("message_start", {"type": "message_start", "message": {"usage": {}}}),
         ("content_block_delta", {"type": "content_block_delta", "index": 3,
                                  "delta": {"type": "text_delta", "text": "x"}})],
        # a text delta in a tool_use block
        [("message_start", {"type": "message_start", "message": {"usage": {}}}),
         ("content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "tool_use", "id": "t", "name": "n",
                                                    "input": {}}}),
         ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "text_delta", "text": "x"}})],
        # message_stop with no message_start
        [("message_stop", {"type": "message_stop"})],
        # a second message_start
        [("message_start", {"type": "message_start", "message": {"usage": {}}}),
         ("message_start", {"type": "message_start", "message": {"usage": {}}})],
        # message_stop while a tool call is still open
        [("message_start", {"type": "message_start", "message": {"usage": {}}}),
         ("content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "tool_use", "id": "t", "name": "n",
                                                    "input": {}}}),
         ("message_stop", {"type": "message_stop"})],
    ],
)  # fmt: skip
async def test_impossible_structures_are_malformed(
    fake: AnthropicFake, provider: AnthropicProvider, events: list[tuple[str, dict[str, object]]]
) -> None:
    fake.push(Reply(events=events))
    seen: list[StreamChunk] = []
    with pytest.raises(NetworkError, match="malformed"):
        await collect(provider, seen)
    assert not any(isinstance(c, DoneChunk) for c in seen)


async def test_unknown_events_and_blocks_are_skipped(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    start = {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}}
    events = [
        ("message_start", start),
        ("future_event", {"type": "future_event", "anything": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "server_tool_use", "id": "s",
                                                   "name": "web_search", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": "{"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "citations_delta", "citation": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "found it"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    fake.push(Reply(events=events))  # type: ignore[arg-type]
    seen: list[StreamChunk] = []
    await collect(provider, seen)
    assert seen[:-1] == [TextChunk("found it")]
    done = seen[-1]
    assert isinstance(done, DoneChunk) and done.usage.prompt == 3 and done.usage.completion == 9


# -- timing -----------------------------------------------------------------------------------


async def test_slow_first_token_still_streams(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.push(Reply(text="late but fine", first_delay=0.4))
    t0 = time.monotonic()
    seen: list[StreamChunk] = []
    await collect(provider, seen)
    assert time.monotonic() - t0 >= 0.4
    assert "".join(c.text for c in seen if isinstance(c, TextChunk)) == "late but fine"
    assert isinstance(seen[-1], DoneChunk)


async def test_the_reply_ends_at_message_stop_even_if_the_body_stays_open(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.push(Reply(text="done", linger=3.0))
    t0 = time.monotonic()
    seen: list[StreamChunk] = []
    await collect(provider, seen)
    assert time.monotonic() - t0 < 2.0
    assert isinstance(seen[-1], DoneChunk)


async def test_text_is_yielded_as_it_arrives(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.push(Reply(text="one two three four", chunk_size=5, delay=0.1))
    arrivals: list[float] = []
    t0 = time.monotonic()
    async for chunk in provider.stream(REQUEST):
        if isinstance(chunk, TextChunk):
            arrivals.append(time.monotonic() - t0)
    end = time.monotonic() - t0
    assert len(arrivals) == 4
    assert end - arrivals[0] >= 0.3  # the first piece came long before the last event
