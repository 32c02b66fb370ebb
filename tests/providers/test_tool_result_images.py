"""Images in tool results (Read of a picture) reach every API in a shape it accepts.

Anthropic: image blocks inside the tool_result. OpenAI Chat (tool messages are text only): a user
message right after the step's tool messages, naming the call. Gemini: inlineData parts in the
same user turn as the functionResponse. Each fake checks the request as its API does and answers
400 otherwise; the engine tests read a real PNG file with the real Read tool.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes import anthropic_fake, gemini_fake, openai_fake
from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.events import Error, ToolCallResult, TurnEnd
from koda.engine.session import KodaSession
from koda.engine.sink import CollectingSink
from koda.engine.trust import TrustMode
from koda.providers.anthropic import AnthropicProvider
from koda.providers.base import ChatRequest, ImageData, LlmProvider, Message, ToolCall
from koda.providers.gemini import GeminiProvider
from koda.providers.hosts import HOSTS
from koda.providers.openai_compat import OpenAICompatProvider
from koda.store import Store


def png(width: int, height: int, shade: int = 0x80) -> bytes:
    """A real PNG (8-bit greyscale), as any decoder reads it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))
    return b"".join([
        b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(rows)),
        chunk(b"IEND", b""),
    ])  # fmt: skip


RED = png(4, 4, 0x10)
BLUE = png(6, 2, 0xF0)
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"  # noqa: E501


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image(data: bytes, kind: str = "image/png") -> ImageData:
    return ImageData(kind, b64(data))


def history(*results: Message, after: list[Message] | None = None) -> list[Message]:
    """A user asks, the assistant calls Read (once per result), the results come back."""
    calls = [ToolCall(r.tool_call_id or "", "Read", {"path": f"shot{n}.png"})
             for n, r in enumerate(results)]  # fmt: skip
    return [
        Message("user", "What do the screenshots show?"),
        Message("assistant", "Let me look.", tool_calls=calls),
        *results,
        *(after or []),
    ]


def result(call_id: str, text: str, *images: ImageData) -> Message:
    return Message("tool", text, tool_call_id=call_id, tool_name="Read", images=list(images))


def request(model: str, messages: list[Message]) -> ChatRequest:
    return ChatRequest(model=model, system="You are Koda.", messages=messages, tools=[])


async def drain(provider: LlmProvider, req: ChatRequest) -> None:
    """Send one request, read the whole reply, and close the provider's connection."""
    try:
        async for _ in provider.stream(req):
            pass
    finally:
        await provider.aclose()


# Anthropic


@pytest.fixture
def anthropic() -> Iterator[anthropic_fake.AnthropicFake]:
    with anthropic_fake.AnthropicFake() as fake:
        yield fake


async def test_anthropic_puts_images_inside_the_tool_result(
    anthropic: anthropic_fake.AnthropicFake,
) -> None:
    provider = AnthropicProvider(HOSTS["anthropic"], api_key="k", base_url=anthropic.url)
    anthropic.push(anthropic_fake.Reply(text="A red square and a blue bar."))
    messages = history(
        result("toolu_1", "shot0.png: PNG image", image(RED)),
        result("toolu_2", "", image(BLUE), image(RED)),  # no text at all
        after=[Message("user", "and?")],
    )
    await drain(provider, request("claude-sonnet-4-5", messages))
    assert anthropic.rejected == []
    [sent] = anthropic.message_requests()
    results = sent.json["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]
    first, second = results[0]["content"], results[1]["content"]
    assert first[0] == {"type": "text", "text": "shot0.png: PNG image"}
    assert first[1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(RED)},
    }  # fmt: skip
    assert [b["type"] for b in second] == ["image", "image"]
    assert second[0]["source"]["data"] == b64(BLUE)


def test_the_anthropic_fake_refuses_a_bad_image_in_a_tool_result() -> None:
    body = {
        "model": "claude-sonnet-4-5", "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "look"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "image", "source": {"type": "base64",
                          "media_type": "image/jpeg", "data": b64(RED)}}]}]},
        ],
    }  # fmt: skip
    problem = anthropic_fake.validate_request(body)
    assert problem is not None and "does not match the provided media type" in problem


# OpenAI Chat Completions


@pytest.fixture
def openai() -> Iterator[openai_fake.OpenAIFake]:
    with openai_fake.OpenAIFake() as fake:
        fake.sniff_images = True
        yield fake


async def test_openai_sends_images_in_a_user_message_after_the_tool_messages(
    openai: openai_fake.OpenAIFake,
) -> None:
    provider = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url=openai.base_url)
    openai.push(openai_fake.Reply(text="Red and blue."))
    messages = history(
        result("call_a", "shot0.png: PNG image", image(RED)),
        result("call_b", "nothing here"),
        result("call_c", "shot2.png: PNG image", image(BLUE)),
    )
    await drain(provider, request("gpt-4.1", messages))
    assert openai.rejected == []
    wire = openai.chat_bodies[0]["messages"]
    assert [m["role"] for m in wire] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "tool",
        "user",
    ]
    assert [m["content"] for m in wire[3:6]] == ["shot0.png: PNG image", "nothing here",
                                                 "shot2.png: PNG image"]  # fmt: skip
    assert wire[6]["content"] == [
        {"type": "text", "text": "Images returned by the Read call call_a:"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(RED)}"}},
        {"type": "text", "text": "Images returned by the Read call call_c:"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(BLUE)}"}},
    ]


async def test_openai_joins_the_images_with_a_user_message_that_follows(
    openai: openai_fake.OpenAIFake,
) -> None:
    provider = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url=openai.base_url)
    openai.push(openai_fake.Reply(text="ok"))
    messages = history(
        result("call_a", "shot0.png: PNG image", image(RED)),
        after=[
            Message("user", "Stop, look at this one too.", images=[image(BLUE)]),
            Message("assistant", "Both are plain colours."),
            Message("user", "thanks"),
        ],
    )
    await drain(provider, request("gpt-4.1", messages))
    assert openai.rejected == []
    wire = openai.chat_bodies[0]["messages"]
    assert [m["role"] for m in wire] == ["system", "user", "assistant", "tool", "user",
                                         "assistant", "user"]  # fmt: skip
    joined = wire[4]["content"]
    assert [p["type"] for p in joined] == ["text", "image_url", "text", "image_url"]
    assert joined[2]["text"] == "Stop, look at this one too."
    assert joined[3]["image_url"]["url"].endswith(b64(BLUE))


async def test_openai_drops_the_images_of_a_result_whose_call_is_gone(
    openai: openai_fake.OpenAIFake,
) -> None:
    provider = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url=openai.base_url)
    openai.push(openai_fake.Reply(text="ok"))
    messages = [Message("user", "hi"), result("orphan", "x", image(RED)), Message("user", "go")]
    await drain(provider, request("gpt-4.1", messages))
    assert openai.rejected == []
    assert "image_url" not in str(openai.chat_bodies[0]["messages"])


def test_the_openai_fake_refuses_images_in_a_tool_message() -> None:
    body = {
        "model": "gpt-4.1",
        "messages": [
            {"role": "user", "content": "look"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
             "function": {"name": "Read", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(RED)}"}}]},
        ],
    }  # fmt: skip
    problem = openai_fake.validate_request(body)
    assert problem is not None and "Supported values are: 'text'" in problem["message"]


# Gemini


@pytest.fixture
def gemini() -> Iterator[gemini_fake.GeminiFake]:
    with gemini_fake.GeminiFake(api_key="g-key") as fake:
        yield fake


async def test_gemini_sends_images_as_inline_data_in_the_function_response_turn(
    gemini: gemini_fake.GeminiFake,
) -> None:
    provider = GeminiProvider(HOSTS["gemini"], api_key="g-key", base_url=gemini.url)
    gemini.push(gemini_fake.Reply(text="Red and blue."))
    messages = history(
        result("c1", "shot0.png: PNG image", image(RED)),
        result("c2", "shot1.gif: GIF image", image(GIF, "image/gif")),  # a format Gemini lacks
    )
    await drain(provider, request("gemini-2.5-flash", messages))
    assert gemini.rejected == []
    contents = gemini.posts[0].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    parts = contents[2]["parts"]
    assert [next(iter(p)) for p in parts] == [
        "functionResponse", "functionResponse", "text", "inlineData", "text", "text",
    ]  # fmt: skip
    assert parts[0]["functionResponse"]["response"] == {"output": "shot0.png: PNG image"}
    assert parts[2]["text"] == 'Images returned by Read {"path": "shot0.png"}:'
    assert parts[3] == {"inlineData": {"mimeType": "image/png", "data": b64(RED)}}
    assert "Gemini cannot read it" in parts[5]["text"]


async def test_gemini_images_of_a_step_follow_all_its_responses_before_the_user_speaks(
    gemini: gemini_fake.GeminiFake,
) -> None:
    provider = GeminiProvider(HOSTS["gemini"], api_key="g-key", base_url=gemini.url)
    gemini.push(gemini_fake.Reply(text="ok"))
    messages = history(
        result("c1", "one", image(RED)),
        result("c2", "two"),
        after=[Message("user", "and now?")],
    )
    await drain(provider, request("gemini-2.5-flash", messages))
    assert gemini.rejected == []
    parts = gemini.posts[0].json["contents"][2]["parts"]
    assert [next(iter(p)) for p in parts] == [
        "functionResponse", "functionResponse", "text", "inlineData", "text",
    ]  # fmt: skip
    assert parts[-1] == {"text": "and now?"}


def test_the_gemini_fake_refuses_an_image_that_is_not_what_it_says() -> None:
    body = {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": b64(b"not a png at all")}}]}]}  # fmt: skip
    problem = gemini_fake.validate_request(body, sniff_images=True)
    assert problem is not None and "Unable to process input image" in problem


# Through the engine: the real Read tool on a real PNG file, then the next request.


async def run_turn(
    provider: LlmProvider, store: Store, project: Path, model: str
) -> CollectingSink:
    config = KodaConfig(retry_base_delay=0.01, model=model)
    session = KodaSession.create(KodaAgent.create(project), store, provider, TrustMode.AUTO, config)
    session.add_user_message("What is in shot.png?")
    sink = CollectingSink()
    try:
        await asyncio.wait_for(session.run_turn(config, [], sink, asyncio.Queue()), 20)
    finally:
        await provider.aclose()
    end = sink.events[-1]
    assert isinstance(end, TurnEnd) and end.reason.kind == "complete", sink.of_type(Error)
    [done] = sink.of_type(ToolCallResult)
    assert done.ok and "PNG image, 6x2 pixels" in done.output
    return sink


@pytest.fixture
def shot(project: Path) -> str:
    (project / "shot.png").write_bytes(BLUE)
    return b64(BLUE)


async def test_engine_read_of_a_png_reaches_anthropic(
    anthropic: anthropic_fake.AnthropicFake, store: Store, project: Path, shot: str
) -> None:
    anthropic.push(
        anthropic_fake.Reply(tool_calls=[anthropic_fake.Call("Read", {"path": "shot.png"},
                                                             id="toolu_r")]),
        anthropic_fake.Reply(text="A blue bar."),
    )  # fmt: skip
    provider = AnthropicProvider(HOSTS["anthropic"], api_key="k", base_url=anthropic.url)
    sink = await run_turn(provider, store, project, "claude-sonnet-4-5")
    assert "A blue bar." in sink.text()
    assert anthropic.rejected == []
    second = anthropic.message_requests()[1].json["messages"][-1]["content"]
    [block] = second
    assert block["tool_use_id"] == "toolu_r"
    assert block["content"][1]["source"] == {"type": "base64", "media_type": "image/png",
                                             "data": shot}  # fmt: skip


async def test_engine_read_of_a_png_reaches_openai(
    openai: openai_fake.OpenAIFake, store: Store, project: Path, shot: str
) -> None:
    openai.push(
        openai_fake.Reply(tool_calls=[openai_fake.Call("Read", {"path": "shot.png"}, id="call_r")]),
        openai_fake.Reply(text="A blue bar."),
    )
    provider = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url=openai.base_url)
    sink = await run_turn(provider, store, project, "gpt-4.1")
    assert "A blue bar." in sink.text()
    assert openai.rejected == []
    tool, user = openai.chat_bodies[1]["messages"][-2:]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_r"
    assert user["content"][1]["image_url"]["url"] == f"data:image/png;base64,{shot}"


async def test_engine_read_of_a_png_reaches_gemini(
    gemini: gemini_fake.GeminiFake, store: Store, project: Path, shot: str
) -> None:
    gemini.push(
        gemini_fake.Reply(tool_calls=[gemini_fake.Call("Read", {"path": "shot.png"})]),
        gemini_fake.Reply(text="A blue bar."),
    )
    provider = GeminiProvider(HOSTS["gemini"], api_key="g-key", base_url=gemini.url)
    sink = await run_turn(provider, store, project, "gemini-2.5-flash")
    assert "A blue bar." in sink.text()
    assert gemini.rejected == []
    parts = gemini.posts[1].json["contents"][-1]["parts"]
    assert parts[-1] == {"inlineData": {"mimeType": "image/png", "data": shot}}
