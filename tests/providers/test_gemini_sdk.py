"""The fake Gemini server is faithful: Google's own SDK (google-genai) reads each scripted stream
to the same text, thinking, function calls, finish reason and usage as our adapter, and the
SDK serialises the same history (function calls with signatures, function responses, images,
continuation tokens) to the same JSON our adapter sends."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import types

from fakes.gemini_fake import SIGNATURE, Call, GeminiFake, Reply
from koda.providers.base import (
    ChatRequest,
    DoneChunk,
    ImageData,
    Message,
    StreamChunk,
    TextChunk,
    ThinkingChunk,
    TokenUsage,
    ToolCall,
    ToolCallChunk,
)
from koda.providers.gemini import GeminiProvider
from koda.providers.hosts import HOSTS

MODEL = "gemini-2.5-flash"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()
TOKEN = base64.b64encode(b"continue-from-here-1").decode()


@pytest.fixture
def fake() -> Iterator[GeminiFake]:
    with GeminiFake(api_key="test") as server:
        yield server


def sdk_client(fake: GeminiFake) -> genai.Client:
    return genai.Client(
        api_key="test",
        http_options=types.HttpOptions(base_url=fake.url, api_version="v1beta"),
    )


async def read_with_sdk(fake: GeminiFake, contents: Any) -> dict[str, Any]:
    client = sdk_client(fake)
    try:
        stream = await client.aio.models.generate_content_stream(
            model=MODEL,
            contents=contents,
            config=types.GenerateContentConfig(max_output_tokens=16384),  # as ChatRequest's
        )
        seen: dict[str, Any] = {"text": "", "thinking": "", "signatures": [], "calls": []}
        finish, usage = None, None
        async for chunk in stream:
            usage = chunk.usage_metadata or usage
            if not chunk.candidates:
                continue
            candidate = chunk.candidates[0]
            finish = candidate.finish_reason or finish
            for part in (candidate.content.parts if candidate.content else None) or []:
                sig = (
                    base64.b64encode(part.thought_signature).decode()
                    if part.thought_signature
                    else None
                )
                if part.function_call is not None:
                    call = part.function_call
                    seen["calls"].append((call.name, call.args or {}, sig))
                elif part.thought:
                    seen["thinking"] += part.text or ""
                    if sig:
                        seen["signatures"].append(sig)
                else:
                    seen["text"] += part.text or ""
                    if sig:
                        seen["signatures"].append(sig)
        assert finish is not None and usage is not None
        stop = {"STOP": "end_turn", "MAX_TOKENS": "max_tokens"}[finish.value]
        if seen["calls"] and stop == "end_turn":
            stop = "tool_use"
        seen["stop"] = stop
        prompt, cached = usage.prompt_token_count or 0, usage.cached_content_token_count or 0
        thoughts = usage.thoughts_token_count or 0
        seen["usage"] = TokenUsage(
            prompt=prompt - cached,
            completion=(usage.candidates_token_count or 0) + thoughts,
            cache_read=cached,
            thinking=thoughts,
        )
        return seen
    finally:
        await client.aio.aclose()


async def read_with_adapter(fake: GeminiFake, messages: list[Message]) -> dict[str, Any]:
    provider = GeminiProvider(HOSTS["gemini"], api_key="test", base_url=fake.url)
    request = ChatRequest(model=MODEL, system="", messages=messages, tools=[])
    chunks: list[StreamChunk] = []
    try:
        chunks = [c async for c in provider.stream(request)]
    finally:
        await provider.aclose()
    done = chunks[-1]
    assert isinstance(done, DoneChunk)
    assert sum(isinstance(c, DoneChunk) for c in chunks) == 1
    return {
        "text": "".join(c.text for c in chunks if isinstance(c, TextChunk)),
        "thinking": "".join(c.text for c in chunks if isinstance(c, ThinkingChunk)),
        "signatures": [c.signature for c in chunks if isinstance(c, ThinkingChunk) and c.signature],
        "calls": [
            (c.call.name, c.call.arguments, c.call.signature)
            for c in chunks
            if isinstance(c, ToolCallChunk)
        ],
        "stop": done.stop_reason,
        "usage": done.usage,
    }


SCRIPTS: dict[str, list[Reply]] = {
    "text": [Reply(text="Hello from the fake Gemini model, streamed in pieces.", chunk_size=5)],
    "thinking": [
        Reply(
            thinking="The user asks for a number. Forty-two is traditional.",
            text="The answer is 42.",
            thoughts_tokens=31,
            signature=SIGNATURE,
            signature_on="first_text",
        )
    ],
    "thinking signed on the thought": [
        Reply(
            thinking="Short thought.",
            text="Done.",
            thoughts_tokens=4,
            signature=SIGNATURE,
            signature_on="thought",
        )
    ],
    "tool use": [
        Reply(
            tool_calls=[
                Call("Read", {"path": "hello.txt", "limit": 10}, SIGNATURE),
                Call("Grep", {"pattern": "def main", "path": "src"}),
            ],
            thinking="I should read the file.",
            thoughts_tokens=12,
        )
    ],
    "text then a call": [
        Reply(
            text="Let me look.",
            tool_calls=[Call("Glob", {"pattern": "**/*.py"}, SIGNATURE)],
            calls_apart=True,
        )
    ],
    "cache usage": [
        Reply(
            text="Cached prefix answer.",
            prompt_tokens=12_000,
            cached_tokens=10_240,
            candidates_tokens=7,
        )
    ],
    "max tokens": [Reply(text="This answer is cut", finish_reason="MAX_TOKENS")],
    "continuation": [
        Reply(
            text="First part of a long answer, ",
            finish_reason="CONTINUATION",
            continuation_token=TOKEN,
            prompt_tokens=30,
            candidates_tokens=8,
        ),
        Reply(text="and the rest of it.", prompt_tokens=30, candidates_tokens=6),
    ],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_sdk_and_adapter_read_the_same_stream(fake: GeminiFake, name: str) -> None:
    fake.push(*SCRIPTS[name])
    by_sdk = await read_with_sdk(fake, "hi")
    fake.push(*SCRIPTS[name])
    ours = await read_with_adapter(fake, [Message("user", "hi")])
    assert ours == by_sdk
    assert ours["text"] or ours["calls"]
    # Both sent the same request, hop for hop (a continuation repeats it with the token).
    hops = len(SCRIPTS[name])
    sdk_posts, our_posts = fake.posts[:hops], fake.posts[hops:]
    assert [p.json for p in our_posts] == [p.json for p in sdk_posts]
    if name == "continuation":
        assert our_posts[1].json == {**our_posts[0].json, "continuationToken": TOKEN}


async def test_continuation_sums_usage_over_the_requests(fake: GeminiFake) -> None:
    fake.push(*SCRIPTS["continuation"])
    ours = await read_with_adapter(fake, [Message("user", "hi")])
    assert ours["text"] == "First part of a long answer, and the rest of it."
    assert ours["usage"] == TokenUsage(prompt=60, completion=14)
    assert ours["stop"] == "end_turn"


def sdk_history(sig_bytes: bytes) -> list[types.Content]:
    return [
        types.Content(
            role="user",
            parts=[
                types.Part.from_bytes(data=base64.b64decode(PNG), mime_type="image/png"),
                types.Part(text="What is in hello.txt and src?"),
            ],
        ),
        types.Content(
            role="model",
            parts=[
                types.Part(text="Let me look.", thought_signature=sig_bytes),
                types.Part(
                    function_call=types.FunctionCall(name="Read", args={"path": "hello.txt"}),
                    thought_signature=sig_bytes,
                ),
                types.Part(
                    function_call=types.FunctionCall(name="Glob", args={"pattern": "src/*"})
                ),
            ],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="Read", response={"output": "hello world"}
                    )
                ),
                types.Part(
                    function_response=types.FunctionResponse(
                        name="Glob", response={"output": "src/app.py"}
                    )
                ),
            ],
        ),
    ]


def camel(data: Any) -> Any:
    """Keys in lowerCamelCase (this history's own keys have no underscores)."""
    if isinstance(data, list):
        return [camel(x) for x in data]
    if isinstance(data, dict):
        return {_camel(k): camel(v) for k, v in data.items()}
    return data


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


def koda_history() -> list[Message]:
    calls = [
        ToolCall("call_a_1_Read", "Read", {"path": "hello.txt"}, SIGNATURE),
        ToolCall("call_a_2_Glob", "Glob", {"pattern": "src/*"}),
    ]
    return [
        Message("user", "What is in hello.txt and src?", images=[ImageData("image/png", PNG)]),
        Message(
            "assistant",
            "Let me look.",
            thinking="I will read it.",  # thinking text is never sent back
            thinking_signature=SIGNATURE,
            tool_calls=calls,
        ),
        Message("tool", "hello world", tool_call_id="call_a_1_Read", tool_name="Read"),
        Message("tool", "src/app.py", tool_call_id="call_a_2_Glob"),  # name looked up
    ]


async def test_sdk_serialises_a_tool_round_trip_history_as_we_do(fake: GeminiFake) -> None:
    """The second leg of a tool round trip: function calls with their thought signatures,
    function responses merged into one user turn, an image as inlineData."""
    fake.push(Reply(text="hello.txt says hello world."), Reply(text="hello.txt says hello world."))
    by_sdk = await read_with_sdk(fake, sdk_history(base64.b64decode(SIGNATURE)))
    ours = await read_with_adapter(fake, koda_history())
    assert ours == by_sdk
    sdk_body, our_body = fake.posts[0].json, fake.posts[1].json
    # Protobuf JSON accepts both spellings, and the SDK writes inlineData's `mime_type`.
    assert our_body["contents"] == camel(sdk_body["contents"])
    model_parts = our_body["contents"][1]["parts"]
    assert model_parts[0] == {"text": "Let me look.", "thoughtSignature": SIGNATURE}
    assert model_parts[1]["thoughtSignature"] == SIGNATURE
    assert "thoughtSignature" not in model_parts[2]
    assert our_body["contents"][0]["parts"][0] == {
        "inlineData": {"mimeType": "image/png", "data": PNG}
    }


async def test_sdk_reads_an_error_body_with_the_same_code_and_message(fake: GeminiFake) -> None:
    from fakes.gemini_fake import context_overflow
    from koda.providers.base import ContextOverflowError

    fake.push(context_overflow())
    client = sdk_client(fake)
    with pytest.raises(genai.errors.ClientError) as sdk_error:
        async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents="hi"):
            pass
    await client.aio.aclose()
    fake.push(context_overflow())
    with pytest.raises(ContextOverflowError) as our_error:
        await read_with_adapter(fake, [Message("user", "hi")])
    assert sdk_error.value.code == 400 and sdk_error.value.status == "INVALID_ARGUMENT"
    assert sdk_error.value.message and sdk_error.value.message in our_error.value.message
