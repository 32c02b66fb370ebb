"""The Gemini adapter reading streams: chunks, signatures, finish reasons, usage, and every fault
the fake can inject mapped to the right error class, in one sentence, never a DoneChunk."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from fakes.gemini_fake import (
    SIGNATURE,
    Call,
    GeminiFake,
    Reply,
    context_overflow,
    error_reply,
    invalid_key,
    not_found,
    permission_denied,
    rate_limited,
    stream_error,
    unavailable,
)
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
    ThinkingChunk,
    TokenUsage,
    ToolCallChunk,
)
from koda.providers.gemini import GeminiProvider
from koda.providers.hosts import HOSTS

KEY = "AIzaSy-test-key-0123456789"


@pytest.fixture
def fake() -> Iterator[GeminiFake]:
    with GeminiFake(api_key=KEY) as server:
        yield server


def request(text: str = "hi") -> ChatRequest:
    return ChatRequest(model="gemini-2.5-flash", system="sys", messages=[Message("user", text)],
                       tools=[])  # fmt: skip


async def collect(fake: GeminiFake, key: str = KEY) -> list[StreamChunk]:
    provider = GeminiProvider(HOSTS["gemini"], api_key=key, base_url=fake.url)
    try:
        return [c async for c in provider.stream(request())]
    finally:
        await provider.aclose()


async def fails(fake: GeminiFake, error: type[ProviderError], key: str = KEY) -> ProviderError:
    """The stream's error; it must come before any DoneChunk."""
    provider = GeminiProvider(HOSTS["gemini"], api_key=key, base_url=fake.url)
    seen: list[StreamChunk] = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in provider.stream(request()):
            seen.append(chunk)
    await provider.aclose()
    assert type(caught.value) is error, caught.value
    assert not any(isinstance(c, DoneChunk) for c in seen)
    message = caught.value.message
    assert KEY not in message and "Traceback" not in message and "\n" not in message
    return caught.value


# -- what a reply becomes ----------------------------------------------------------------------


async def test_thinking_then_text_streams_in_order_with_usage(fake: GeminiFake) -> None:
    reply = Reply(thinking="think think", text="Hello, world!", chunk_size=4, prompt_tokens=100,
                  cached_tokens=60, candidates_tokens=9, thoughts_tokens=20)  # fmt: skip
    fake.push(reply)
    chunks = await collect(fake)
    kinds = [type(c).__name__ for c in chunks]
    assert kinds == ["ThinkingChunk"] * 3 + ["TextChunk"] * 4 + ["DoneChunk"]
    assert "".join(c.text for c in chunks if isinstance(c, ThinkingChunk)) == "think think"
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == ["Hell", "o, w", "orld", "!"]
    assert chunks[-1] == DoneChunk(
        TokenUsage(prompt=40, completion=29, cache_read=60, thinking=20), "end_turn"
    )


async def test_function_calls_get_unique_ids_and_keep_their_signatures(fake: GeminiFake) -> None:
    calls = [Call("Read", {"path": "a.txt"}, SIGNATURE), Call("Read", {"path": "b.txt"}),
             Call("Glob", None)]  # fmt: skip
    fake.push(Reply(tool_calls=calls), Reply(tool_calls=calls))
    first, second = await collect(fake), await collect(fake)
    got = [c.call for c in first if isinstance(c, ToolCallChunk)]
    assert [(c.name, c.arguments, c.signature) for c in got] == [
        ("Read", {"path": "a.txt"}, SIGNATURE),
        ("Read", {"path": "b.txt"}, None),
        ("Glob", {}, None),
    ]
    assert all(re.fullmatch(r"call_[0-9a-f]{8}_\d+_\w+", c.id) for c in got)
    again = [c.call.id for c in second if isinstance(c, ToolCallChunk)]
    assert len({c.id for c in got} | set(again)) == 6  # unique in the reply and across replies
    done = first[-1]
    assert isinstance(done, DoneChunk) and done.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("where", "expected"),
    [("first_text", [SIGNATURE]), ("thought", [SIGNATURE]), ("last", [SIGNATURE])],
)
async def test_a_text_signature_travels_on_a_thinking_chunk(
    fake: GeminiFake, where: str, expected: list[str]
) -> None:
    fake.push(Reply(thinking="hm", text="Answer text.", signature=SIGNATURE, signature_on=where))
    chunks = await collect(fake)
    thinking = [c for c in chunks if isinstance(c, ThinkingChunk)]
    assert [c.signature for c in thinking if c.signature] == expected
    first_text = next(i for i, c in enumerate(chunks) if isinstance(c, TextChunk))
    # After the answer began, only an empty chunk that carries the signature: the engine keeps
    # it without showing any thinking.
    late = [c for c in chunks[first_text:] if isinstance(c, ThinkingChunk)]
    assert all(c.text == "" for c in late)
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == "Answer text."


async def test_max_tokens_is_reported(fake: GeminiFake) -> None:
    fake.push(Reply(text="cut sho", finish_reason="MAX_TOKENS"))
    chunks = await collect(fake)
    assert isinstance(chunks[-1], DoneChunk) and chunks[-1].stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("finish", "words"),
    [("SAFETY", "safety"), ("RECITATION", "recited"), ("OTHER", "OTHER"),
     ("MALFORMED_FUNCTION_CALL", "malformed tool call")],
)  # fmt: skip
async def test_refusals_are_clear_errors(fake: GeminiFake, finish: str, words: str) -> None:
    fake.push(Reply(text="Some", finish_reason=finish))
    error = await fails(fake, ProviderError)
    assert words in error.message and error.message.startswith("gemini ")
    assert not error.retryable


async def test_a_blocked_prompt_is_a_clear_error(fake: GeminiFake) -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
               "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}  # fmt: skip
    fake.push(Reply(events_override=[blocked]))
    error = await fails(fake, ProviderError)
    assert error.message == "gemini refused the prompt (PROHIBITED_CONTENT)"


# -- streams that break ------------------------------------------------------------------------


async def test_a_dropped_connection_is_a_network_error(fake: GeminiFake) -> None:
    fake.push(Reply(text="partial answer that never ends", chunk_size=5, drop_after=2))
    error = await fails(fake, NetworkError)
    assert error.retryable


async def test_a_drop_after_the_finish_reason_is_still_incomplete(fake: GeminiFake) -> None:
    """The finish reason and the tool call arrived, but the stream did not end cleanly."""
    fake.push(Reply(tool_calls=[Call("Write", {"path": "x", "content": "y"})], drop_after=1))
    await fails(fake, NetworkError)


async def test_a_clean_end_without_a_finish_reason_is_a_network_error(fake: GeminiFake) -> None:
    fake.push(Reply(text="abcdefghijkl", chunk_size=4, end_after=2))
    error = await fails(fake, NetworkError)
    assert "stopped before it finished" in error.message


async def test_a_malformed_chunk_is_a_network_error(fake: GeminiFake) -> None:
    fake.push(Reply(text="abcdefghijkl", chunk_size=4, malformed_at=1))
    error = await fails(fake, NetworkError)
    assert "malformed" in error.message


@pytest.mark.parametrize(
    "event",
    [
        {"candidates": {"content": {}}},
        {"candidates": [{"content": {"parts": "text"}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "Read", "args": [1]}}]}}]},
        {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
        ["not", "an", "object"],
    ],
)
async def test_impossible_structures_are_network_errors(fake: GeminiFake, event: object) -> None:
    fake.push(Reply(events_override=[event]))  # type: ignore[list-item]
    await fails(fake, NetworkError)


async def test_slow_first_token_still_arrives(fake: GeminiFake) -> None:
    fake.push(Reply(text="worth the wait", first_delay=0.4))
    chunks = await collect(fake)
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == "worth the wait"


async def test_a_read_timeout_is_a_network_error(
    fake: GeminiFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODA_READ_TIMEOUT_SECS", "0.2")
    fake.push(Reply(text="too late", first_delay=1.0))
    error = await fails(fake, NetworkError)
    assert "timed out" in error.message


# -- error bodies ------------------------------------------------------------------------------


async def test_429_uses_gemini_retry_info_as_retry_after(fake: GeminiFake) -> None:
    fake.push(rate_limited(retry_delay="1.5s"))
    error = await fails(fake, RateLimitError)
    assert error.retry_after == 1.5
    assert error.message == (
        "gemini is rate limiting requests (You exceeded your current quota, please check your "
        "plan and billing details.)"
    )


async def test_a_retry_after_header_wins_over_retry_info(fake: GeminiFake) -> None:
    fake.push(rate_limited(retry_delay="9s", headers={"Retry-After": "2"}))
    assert (await fails(fake, RateLimitError)).retry_after == 2.0


async def test_503_unavailable_is_overloaded(fake: GeminiFake) -> None:
    fake.push(unavailable())
    error = await fails(fake, OverloadedError)
    assert "The model is overloaded" in error.message and error.retryable


async def test_token_limit_is_context_overflow(fake: GeminiFake) -> None:
    fake.push(context_overflow(2_000_000))
    error = await fails(fake, ContextOverflowError)
    assert "(2000000) exceeds the maximum number of tokens" in error.message


async def test_an_invalid_key_is_an_auth_error_without_the_key(fake: GeminiFake) -> None:
    error = await fails(fake, AuthError, key="AIza-wrong-key")
    assert "API key not valid" in error.message and "koda auth login gemini" in error.message
    assert "AIza-wrong-key" not in error.message
    fake.push(invalid_key())
    await fails(fake, AuthError)


async def test_unauthenticated_is_an_auth_error(fake: GeminiFake) -> None:
    fake.push(
        error_reply(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    )
    error = await fails(fake, AuthError)
    assert "invalid authentication credentials" in error.message


async def test_permission_denied_is_an_auth_error(fake: GeminiFake) -> None:
    fake.push(permission_denied())
    error = await fails(fake, AuthError)
    assert "HTTP 403" in error.message and "unregistered callers" in error.message


async def test_not_found_names_the_model(fake: GeminiFake) -> None:
    fake.push(not_found("gemini-9-ultra"))
    error = await fails(fake, ProviderError)
    assert "models/gemini-9-ultra is not found" in error.message and "--model" in error.message


async def test_other_400s_are_plain_errors_with_geminis_words(fake: GeminiFake) -> None:
    fake.push(error_reply(400, "FAILED_PRECONDITION", "User location is not supported."))
    error = await fails(fake, ProviderError)
    said = "gemini rejected the request (HTTP 400) (User location is not supported.)"
    assert error.message == said


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [(429, "RESOURCE_EXHAUSTED", RateLimitError), (503, "UNAVAILABLE", OverloadedError),
     (500, "INTERNAL", OverloadedError), (400, "INVALID_ARGUMENT", ProviderError)],
)  # fmt: skip
async def test_an_error_event_inside_the_stream(
    fake: GeminiFake, code: int, status: str, error: type[ProviderError]
) -> None:
    fake.push(stream_error(Reply(text="some text first", chunk_size=5), code, status, "Boom."))
    assert "Boom." in (await fails(fake, error)).message


async def test_an_error_written_as_bare_json_lines(fake: GeminiFake) -> None:
    reply = stream_error(Reply(text="abc"), 503, "UNAVAILABLE", "Try later.", after=0)
    reply.raw_error_lines = True
    fake.push(reply)
    assert "Try later." in (await fails(fake, OverloadedError)).message


async def test_the_key_goes_in_a_header_never_the_url(fake: GeminiFake) -> None:
    fake.push(Reply(text="ok"))
    await collect(fake)
    [post] = fake.posts
    assert post.headers["x-goog-api-key"] == KEY
    assert post.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert post.query == {"alt": ["sse"]}
    assert KEY not in json.dumps(post.json)
