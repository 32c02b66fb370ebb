"""The fake OpenAI server is faithful: the official SDK reads its streams as our adapter does.

Each case streams one scripted answer twice, once to `openai.AsyncOpenAI` (pointed at the fake)
and once to OpenAICompatProvider, and compares what each saw: text, reasoning, tool calls
(assembled by index), the finish reason and the token usage. The SDK is also sent the very body
our adapter built, and the fake recorded both requests: they must be the same JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from fakes.openai_fake import Call, OpenAIFake, Reply
from koda.providers.base import (
    ChatRequest,
    DoneChunk,
    ImageData,
    Message,
    TextChunk,
    ThinkingChunk,
    ToolCall,
    ToolCallChunk,
    ToolDefinition,
)
from koda.providers.hosts import HOSTS
from koda.providers.openai_compat import OpenAICompatProvider

PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
TOOLS = [
    ToolDefinition(
        "Read",
        "Read a file.",
        {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    ),
    ToolDefinition(
        "Grep",
        "Search files.",
        {"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]},
    ),
]
FINISH = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}


@dataclass
class Seen:
    text: str = ""
    thinking: str = ""
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # id, name, args
    stop: str | None = None
    usage: tuple[int, int, int, int] = (0, 0, 0, 0)  # prompt, completion, cache_read, thinking


@pytest.fixture
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake() as server:
        yield server


def request(messages: list[Message] | None = None) -> ChatRequest:
    return ChatRequest(
        model="gpt-4.1",
        system="You are Koda.",
        messages=messages or [Message(role="user", content="hi")],
        tools=TOOLS,
        max_tokens=1000,
    )


async def adapter_reads(fake: OpenAIFake, req: ChatRequest) -> Seen:
    provider = OpenAICompatProvider(HOSTS["openai"], api_key="test", base_url=fake.base_url)
    seen = Seen()
    try:
        async for chunk in provider.stream(req):
            if isinstance(chunk, TextChunk):
                seen.text += chunk.text
            elif isinstance(chunk, ThinkingChunk):
                seen.thinking += chunk.text
            elif isinstance(chunk, ToolCallChunk):
                seen.calls.append((chunk.call.id, chunk.call.name, chunk.call.arguments))
            elif isinstance(chunk, DoneChunk):
                u = chunk.usage
                seen.stop, seen.usage = (
                    chunk.stop_reason,
                    (
                        u.prompt,
                        u.completion,
                        u.cache_read,
                        u.thinking,
                    ),
                )
    finally:
        await provider.aclose()
    return seen


async def sdk_reads(fake: OpenAIFake, body: dict[str, Any]) -> Seen:
    client = openai.AsyncOpenAI(api_key="test", base_url=fake.base_url, max_retries=0)
    kwargs = {k: v for k, v in body.items() if k != "stream"}
    seen = Seen()
    slots: dict[int, dict[str, str]] = {}
    try:
        stream = await client.chat.completions.create(stream=True, **kwargs)
        async for chunk in stream:
            if chunk.usage is not None:
                u = chunk.usage
                cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0
                reasoning = (
                    u.completion_tokens_details.reasoning_tokens
                    if u.completion_tokens_details
                    else 0
                )
                seen.usage = (
                    u.prompt_tokens - (cached or 0),
                    u.completion_tokens,
                    cached or 0,
                    reasoning or 0,
                )
            for choice in chunk.choices:
                delta = choice.delta
                seen.text += delta.content or ""
                extra = getattr(delta, "reasoning_content", None) or getattr(
                    delta, "reasoning", None
                )
                seen.thinking += extra or ""
                for tc in delta.tool_calls or []:
                    slot = slots.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = slot["id"] or (tc.id or "")
                    if tc.function is not None:
                        slot["name"] = slot["name"] or (tc.function.name or "")
                        slot["arguments"] += tc.function.arguments or ""
                if choice.finish_reason:
                    seen.stop = FINISH[choice.finish_reason]
    finally:
        await client.close()
    seen.calls = [
        (s["id"], s["name"], json.loads(s["arguments"] or "{}")) for _, s in sorted(slots.items())
    ]
    return seen


async def both_read(fake: OpenAIFake, reply: Reply, req: ChatRequest) -> tuple[Seen, Seen]:
    fake.push(reply, reply)
    ours = await adapter_reads(fake, req)
    body = OpenAICompatProvider(HOSTS["openai"], api_key="test", base_url=fake.base_url)
    theirs = await sdk_reads(fake, body.build_body(req))
    ours_body, sdk_body = fake.chat_bodies[-2:]
    assert sdk_body == ours_body  # the SDK sends our body unchanged: it is a valid request
    return ours, theirs


CASES = {
    "text": Reply(text='The answer is 42.\nUnicode ✓, "quotes" and \\ slashes.', chunk_size=3),
    "reasoning_content": Reply(
        reasoning="The user greets me. I should greet back.", text="Hello!", reasoning_tokens=11
    ),
    "reasoning": Reply(reasoning="Short thought.", reasoning_field="reasoning", text="Hi."),
    "tool_calls": Reply(
        text="Looking at both.",
        tool_calls=[
            Call("Read", {"path": "src/app.py"}),
            Call("Grep", {"pattern": "def \\w+\\(", "path": "src"}, id="call_second"),
        ],
        arg_chunk=3,
    ),
    "cache_usage": Reply(
        text="cached", prompt_tokens=2048, cached_tokens=1536, completion_tokens=3
    ),
    "length": Reply(text="This answer was cut", finish_reason="length"),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_sdk_and_adapter_read_the_same_stream(fake: OpenAIFake, name: str) -> None:
    reply = CASES[name]
    ours, theirs = await both_read(fake, reply, request())
    assert ours == theirs
    # And both saw what was scripted, so an empty match cannot pass.
    assert ours.text == (reply.text if not reply.chunks else "".join(reply.chunks))
    assert ours.thinking == reply.reasoning
    assert [c[1] for c in ours.calls] == [c.name for c in reply.tool_calls]
    assert ours.usage == (
        reply.prompt_tokens - reply.cached_tokens,
        reply.completion_tokens,
        reply.cached_tokens,
        reply.reasoning_tokens,
    )


async def test_tool_use_round_trip_history_matches_what_sdk_users_send(fake: OpenAIFake) -> None:
    first = Reply(
        text="Reading.",
        tool_calls=[Call("Read", {"path": "a.txt"}), Call("Read", {"path": "b.txt"})],
    )
    ours, theirs = await both_read(fake, first, request())
    assert ours == theirs and ours.stop == "tool_use"
    # The follow-up request, as the OpenAI docs have SDK users build it from what they read …
    sdk_assistant = {
        "role": "assistant",
        "content": theirs.text,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, n, a in theirs.calls
        ],
    }
    sdk_results = [
        {"role": "tool", "tool_call_id": i, "content": f"contents of {a['path']}"}
        for i, _, a in theirs.calls
    ]
    # … and as our adapter builds it from Koda's history.
    history = [
        Message(role="user", content="hi"),
        Message(
            role="assistant",
            content=ours.text,
            thinking="not sent",
            tool_calls=[ToolCall(i, n, a) for i, n, a in ours.calls],
        ),
        *[
            Message(role="tool", content=f"contents of {a['path']}", tool_call_id=i, tool_name=n)
            for i, n, a in ours.calls
        ],
    ]
    provider = OpenAICompatProvider(HOSTS["openai"], api_key="test", base_url=fake.base_url)
    wire = provider.wire_messages(request(history))
    assert wire[2:] == [sdk_assistant, *sdk_results]
    # The fake and the SDK accept that history and read the final answer alike.
    final = Reply(text="Both files read.")
    ours2, theirs2 = await both_read(fake, final, request(history))
    assert ours2 == theirs2 and ours2.text == "Both files read." and ours2.stop == "end_turn"


async def test_images_reach_the_wire_as_the_sdk_sends_them(fake: OpenAIFake) -> None:
    history = [
        Message(role="user", content="What is this?", images=[ImageData("image/png", PIXEL)])
    ]
    ours, theirs = await both_read(fake, Reply(text="A single pixel."), request(history))
    assert ours == theirs and ours.text == "A single pixel."
    user = fake.chat_bodies[0]["messages"][1]
    assert user == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
        ],
    }
