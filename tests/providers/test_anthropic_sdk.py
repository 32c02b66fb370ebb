"""The fake Anthropic server is read the same way by the official SDK and by our adapter.

Each scripted stream is played twice: once to `anthropic.AsyncAnthropic(...).messages.stream`,
once to AnthropicProvider.stream. Both must see the same text, thinking (with signature), tool
calls, stop reason and usage; both requests must carry the same body. That the SDK accepts the
stream proves the fake faithful; that we read what the SDK reads proves the adapter right.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import pytest

from fakes.anthropic_fake import AnthropicFake, Call, Reply
from koda.providers.anthropic import AnthropicProvider, build_body
from koda.providers.base import (
    ChatRequest,
    DoneChunk,
    ImageData,
    Message,
    OverloadedError,
    TextChunk,
    ThinkingChunk,
    ToolCall,
    ToolCallChunk,
    ToolDefinition,
)
from koda.providers.hosts import HOSTS

MODEL = "claude-sonnet-4-6"
STOPS = {"end_turn": "end_turn", "stop_sequence": "end_turn", "tool_use": "tool_use",
         "max_tokens": "max_tokens"}  # fmt: skip
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TOOLS = [
    ToolDefinition(
        "Read",
        "Read a file",
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    ),
    ToolDefinition("List", "List a directory", {"type": "object", "properties": {}}),
]


@dataclass
class Seen:
    text: str = ""
    thinking: str = ""
    signature: str | None = None
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    stop: str = ""
    usage: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)


@pytest.fixture
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake() as server:
        yield server


def request(messages: list[Message] | None = None, **kw: Any) -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        system="You are Koda.",
        messages=messages or [Message("user", "hello")],
        tools=TOOLS,
        max_tokens=1024,
        **kw,
    )


async def read_sdk(fake: AnthropicFake, req: ChatRequest) -> Seen:
    params = build_body(req)
    del params["stream"]
    client = anthropic.AsyncAnthropic(api_key="test", base_url=fake.url, max_retries=0)
    seen = Seen()
    streamed_text = ""
    try:
        async with client.messages.stream(**params) as stream:
            async for event in stream:
                if event.type == "text":
                    streamed_text += event.text
            final = await stream.get_final_message()
    finally:
        await client.close()
    for block in final.content:
        if block.type == "text":
            seen.text += block.text
        elif block.type == "thinking":
            seen.thinking += block.thinking
            seen.signature = block.signature
        elif block.type == "tool_use":
            seen.calls.append((block.id, block.name, dict(block.input)))
    assert streamed_text == seen.text
    seen.stop = STOPS[str(final.stop_reason)]
    u = final.usage
    details = u.output_tokens_details
    seen.usage = (
        u.input_tokens,
        u.output_tokens,
        u.cache_read_input_tokens or 0,
        u.cache_creation_input_tokens or 0,
        details.thinking_tokens if details else 0,
    )
    return seen


async def read_ours(fake: AnthropicFake, req: ChatRequest) -> Seen:
    provider = AnthropicProvider(HOSTS["anthropic"], api_key="test", base_url=fake.url)
    seen = Seen()
    try:
        async for chunk in provider.stream(req):
            if isinstance(chunk, TextChunk):
                seen.text += chunk.text
            elif isinstance(chunk, ThinkingChunk):
                seen.thinking += chunk.text
                seen.signature = chunk.signature or seen.signature
            elif isinstance(chunk, ToolCallChunk):
                seen.calls.append((chunk.call.id, chunk.call.name, chunk.call.arguments))
            elif isinstance(chunk, DoneChunk):
                u = chunk.usage
                seen.stop = chunk.stop_reason
                seen.usage = (u.prompt, u.completion, u.cache_read, u.cache_write, u.thinking)
    finally:
        await provider.aclose()
    return seen


async def both(fake: AnthropicFake, reply: Reply, req: ChatRequest) -> tuple[Seen, Seen]:
    fake.push(reply, reply)
    sdk = await read_sdk(fake, req)
    ours = await read_ours(fake, req)
    sdk_body, our_body = (r.json for r in fake.message_requests()[-2:])
    assert sdk_body == our_body  # the SDK sends our body unchanged: its types accept it
    return sdk, ours


async def test_plain_text(fake: AnthropicFake) -> None:
    reply = Reply(text="Hello from the fake Claude — with ünïcode.", input_tokens=31,
                  output_tokens=9)  # fmt: skip
    sdk, ours = await both(fake, reply, request())
    assert ours == sdk
    assert ours.text == reply.text and ours.stop == "end_turn" and ours.usage == (31, 9, 0, 0, 0)


async def test_thinking_with_signature(fake: AnthropicFake) -> None:
    reply = Reply(
        thinking="Let me think about the question step by step.",
        signature="EuYBCkQYAiJAsignatureXYZ==",
        text="The answer is 4.",
        thinking_tokens=14,
        output_tokens=30,
    )
    sdk, ours = await both(fake, reply, request(thinking_budget=2048))
    assert ours == sdk
    assert ours.thinking == reply.thinking and ours.signature == "EuYBCkQYAiJAsignatureXYZ=="
    assert ours.usage[4] == 14 and ours.usage[1] == 30


async def test_tool_calls(fake: AnthropicFake) -> None:
    reply = Reply(
        text="I'll read it.",
        tool_calls=[
            Call("Read", {"path": "src/app.py", "nested": {"a": [1, 2, "ü"]}}, id="toolu_01A"),
            Call("List", {}, id="toolu_01B"),
        ],
        chunk_size=3,
    )
    sdk, ours = await both(fake, reply, request())
    assert ours == sdk
    assert ours.calls == [
        ("toolu_01A", "Read", {"path": "src/app.py", "nested": {"a": [1, 2, "ü"]}}),
        ("toolu_01B", "List", {}),
    ]
    assert ours.stop == "tool_use"


async def test_tool_round_trip_history(fake: AnthropicFake) -> None:
    history = [
        Message("user", "what is in app.py?"),
        Message(
            "assistant",
            "Reading.",
            thinking="I should read it.",
            thinking_signature="sig-1",
            tool_calls=[ToolCall("toolu_01A", "Read", {"path": "src/app.py"})],
        ),
        Message("tool", "def main():\n    return 42\n", tool_call_id="toolu_01A",
                tool_name="Read"),
    ]  # fmt: skip
    sdk, ours = await both(fake, Reply(text="It returns 42."), request(history))
    assert ours == sdk and ours.text == "It returns 42."
    sent = fake.message_requests()[-1].json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[2]["content"][0]["type"] == "tool_result"


async def test_image_request(fake: AnthropicFake) -> None:
    msg = Message("user", "what is this?", images=[ImageData("image/png", PNG)])
    sdk, ours = await both(fake, Reply(text="A single pixel."), request([msg]))
    assert ours == sdk
    content = fake.message_requests()[-1].json["messages"][0]["content"]
    assert content[0]["type"] == "image" and content[1]["type"] == "text"


@pytest.mark.parametrize("cumulative", [False, True])
async def test_cache_usage(fake: AnthropicFake, cumulative: bool) -> None:
    reply = Reply(
        text="cached",
        input_tokens=12,
        cache_read=4096,
        cache_write=512,
        output_tokens=5,
        delta_usage_cumulative=cumulative,
    )
    sdk, ours = await both(fake, reply, request())
    assert ours == sdk
    assert ours.usage == (12, 5, 4096, 512, 0)


@pytest.mark.parametrize(
    ("stop", "mapped"),
    [("max_tokens", "max_tokens"), ("stop_sequence", "end_turn"), ("end_turn", "end_turn")],
)
async def test_stop_reasons(fake: AnthropicFake, stop: str, mapped: str) -> None:
    sdk, ours = await both(fake, Reply(text="cut sh", stop_reason=stop), request())
    assert ours == sdk and ours.stop == mapped


async def test_redacted_thinking_and_pings(fake: AnthropicFake) -> None:
    reply = Reply(thinking="visible part", redacted_thinking=True, text="done", ping=True)
    sdk, ours = await both(fake, reply, request(thinking_budget=1024))
    assert ours == sdk and ours.text == "done"


async def test_error_event_mid_stream(fake: AnthropicFake) -> None:
    reply = Reply(text="partial answer", error_event_after=4, error_type="overloaded_error")
    fake.push(reply, reply)
    client = anthropic.AsyncAnthropic(api_key="test", base_url=fake.url, max_retries=0)
    params = build_body(request())
    del params["stream"]
    with pytest.raises(anthropic.APIStatusError) as sdk_error:
        async with client.messages.stream(**params) as stream:
            async for _ in stream:
                pass
    await client.close()
    body = sdk_error.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "overloaded_error"
    with pytest.raises(OverloadedError, match="overloaded"):
        await read_ours(fake, request())


async def test_http_overloaded_is_the_sdk_s_overloaded(fake: AnthropicFake) -> None:
    from fakes.anthropic_fake import overloaded

    fake.push(overloaded(), overloaded())
    client = anthropic.AsyncAnthropic(api_key="test", base_url=fake.url, max_retries=0)
    params = build_body(request())
    del params["stream"]
    with pytest.raises(anthropic.OverloadedError):
        async with client.messages.stream(**params) as stream:
            async for _ in stream:
                pass
    await client.close()
    with pytest.raises(OverloadedError, match="HTTP 529"):
        await read_ours(fake, request())
