"""What the Gemini adapter sends: the request body (history, system, tools, generation config),
deterministic bytes for the same history, and the models endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fakes.gemini_fake import SIGNATURE, GeminiFake, Reply, model_entry
from koda.config import KodaConfig
from koda.providers.base import (
    ChatRequest,
    ImageData,
    Message,
    ModelCapabilities,
    TextChunk,
    TokenUsage,
    ToolCall,
    ToolDefinition,
)
from koda.providers.catalog import create_provider
from koda.providers.gemini import GeminiProvider, to_contents
from koda.providers.hosts import HOSTS
from koda.tools.catalog import default_catalog

KEY = "AIzaSy-wire-test"


@pytest.fixture
def fake() -> Iterator[GeminiFake]:
    with GeminiFake(api_key=KEY) as server:
        yield server


def provider_for(fake: GeminiFake) -> GeminiProvider:
    return GeminiProvider(HOSTS["gemini"], api_key=KEY, base_url=fake.url)


async def send(fake: GeminiFake, request: ChatRequest) -> dict[str, object]:
    provider = provider_for(fake)
    fake.push(Reply(text="ok"))
    try:
        _ = [c async for c in provider.stream(request)]
    finally:
        await provider.aclose()
    body = fake.posts[-1].json
    assert isinstance(body, dict)
    return body


def tools() -> list[ToolDefinition]:
    return list(default_catalog().definitions())


async def test_body_carries_system_tools_and_generation_config(fake: GeminiFake) -> None:
    request = ChatRequest(model="models/gemini-2.5-pro", system="You are Koda.",
                          messages=[Message("user", "hi")], tools=tools(), max_tokens=4096,
                          temperature=0.2, thinking_budget=2048)  # fmt: skip
    body = await send(fake, request)
    assert fake.posts[-1].path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert fake.posts[-1].headers["accept"] == "text/event-stream"
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert body["systemInstruction"] == {"parts": [{"text": "You are Koda."}]}
    assert body["generationConfig"] == {
        "maxOutputTokens": 4096,
        "temperature": 0.2,
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    }
    [group] = body["tools"]  # type: ignore[misc]
    declarations = group["functionDeclarations"]
    assert [d["name"] for d in declarations] == [t.name for t in tools()]
    read = next(d for d in declarations if d["name"] == "Read")
    source = next(t for t in tools() if t.name == "Read")
    assert read == {"name": "Read", "description": source.description,
                    "parametersJsonSchema": source.parameters}  # fmt: skip
    assert read["parametersJsonSchema"]["additionalProperties"] is False
    assert "parameters" not in read


async def test_optional_fields_are_left_out(fake: GeminiFake) -> None:
    request = ChatRequest(model="gemini-2.5-flash", system="", messages=[Message("user", "hi")],
                          tools=[ToolDefinition("Ping", "no arguments", {})])  # fmt: skip
    body = await send(fake, request)
    assert set(body) == {"contents", "tools", "generationConfig"}
    assert body["tools"] == [
        {"functionDeclarations": [{"name": "Ping", "description": "no arguments"}]}
    ]
    assert body["generationConfig"] == {"maxOutputTokens": 16384}
    request.thinking_budget = 0  # thinking off: nothing to include
    body = await send(fake, request)
    assert body["generationConfig"] == {"maxOutputTokens": 16384,
                                        "thinkingConfig": {"thinkingBudget": 0}}  # fmt: skip


def test_history_becomes_alternating_contents_with_signatures() -> None:
    calls = [ToolCall("c1", "Read", {"path": "a"}, SIGNATURE), ToolCall("c2", "Grep", {"q": "x"})]
    history = [
        Message("user", "first"),
        Message("user", "second", images=[ImageData("image/jpeg", "AAAA")]),
        Message("assistant", "Looking.", thinking="secret thoughts", thinking_signature="T1",
                tool_calls=calls),
        Message("tool", "contents of a", tool_call_id="c1", tool_name="Read"),
        Message("tool", "3 matches", tool_call_id="c2"),
        Message("tool", "stray result", tool_call_id="gone", tool_name="Read"),
        Message("user", "thanks"),
        Message("assistant", "You're welcome."),
    ]  # fmt: skip
    assert to_contents(history) == [
        {"role": "user", "parts": [
            {"text": "first"},
            {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}},
            {"text": "second"},
        ]},
        {"role": "model", "parts": [
            {"text": "Looking.", "thoughtSignature": "T1"},
            {"functionCall": {"name": "Read", "args": {"path": "a"}},
             "thoughtSignature": SIGNATURE},
            {"functionCall": {"name": "Grep", "args": {"q": "x"}}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "Read", "response": {"output": "contents of a"}}},
            {"functionResponse": {"name": "Grep", "response": {"output": "3 matches"}}},
            {"text": "thanks"},
        ]},
        {"role": "model", "parts": [{"text": "You're welcome."}]},
    ]  # fmt: skip
    assert "secret thoughts" not in json.dumps(to_contents(history))


def test_history_from_another_provider_converts() -> None:
    """Anthropic-style ids, no Gemini signatures, a call left unanswered, a tool-only reply."""
    history = [
        Message("user", "go"),
        Message("assistant", "", tool_calls=[ToolCall("toolu_01A", "Bash", {"command": "ls"}),
                                             ToolCall("toolu_01B", "Read", {"path": "x"})]),
        Message("tool", "a.txt", tool_call_id="toolu_01A", tool_name="Bash"),
        Message("user", "and?"),
        Message("assistant", ""),  # an empty reply carries nothing
        Message("user", "hello?"),
    ]  # fmt: skip
    contents = to_contents(history)
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}}},
        {"functionCall": {"name": "Read", "args": {"path": "x"}}},
    ]
    responses = [p["functionResponse"] for p in contents[2]["parts"] if "functionResponse" in p]
    assert [r["name"] for r in responses] == ["Bash", "Read"]  # one response for every call
    assert responses[0]["response"] == {"output": "a.txt"}
    assert "did not finish" in responses[1]["response"]["output"]
    assert contents[2]["parts"][-2:] == [{"text": "and?"}, {"text": "hello?"}]


async def test_same_history_same_bytes_and_new_requests_only_append(fake: GeminiFake) -> None:
    calls = [ToolCall("c1", "Read", {"path": "a", "limit": 5}, SIGNATURE)]
    history = [Message("user", "read a"), Message("assistant", "", tool_calls=calls),
               Message("tool", "aaa", tool_call_id="c1", tool_name="Read")]  # fmt: skip
    base = ChatRequest("gemini-2.5-flash", "system", history, tools())
    first = await send(fake, base)
    again = await send(fake, ChatRequest("gemini-2.5-flash", "system", list(history), tools()))
    assert fake.posts[-1].raw == fake.posts[-2].raw
    longer = [*history, Message("assistant", "done"), Message("user", "more")]
    later = await send(fake, ChatRequest("gemini-2.5-flash", "system", longer, tools()))
    assert first == again
    n = len(first["contents"])  # type: ignore[arg-type]
    assert json.dumps(later["contents"][:n]) == json.dumps(first["contents"])  # type: ignore[index]
    assert (
        later["tools"] == first["tools"]
        and later["systemInstruction"] == first["systemInstruction"]
    )


async def test_list_models_pages_and_keeps_generate_content_models(fake: GeminiFake) -> None:
    fake.models = [model_entry(f"gemini-m{i}") for i in range(5)]
    fake.models.insert(2, model_entry("text-embedding", methods=("embedContent",)))
    fake.page_size = 2
    provider = provider_for(fake)
    assert await provider.list_models() == [f"gemini-m{i}" for i in range(5)]
    await provider.aclose()
    gets = [r for r in fake.requests if r.method == "GET"]
    assert len(gets) == 3 and all(r.headers["x-goog-api-key"] == KEY for r in gets)
    assert gets[1].query["pageToken"] == ["2"]


async def test_probe_learns_limits_and_caps_max_output(fake: GeminiFake) -> None:
    fake.models = [model_entry("gemini-2.0-flash", 1_000_000, 8_192)]
    provider = provider_for(fake)
    assert provider.capabilities("gemini-2.0-flash") == ModelCapabilities(1_048_576, 65_536)
    await provider.probe("gemini-2.0-flash")
    assert provider.capabilities("gemini-2.0-flash") == ModelCapabilities(1_000_000, 8_192)
    await provider.probe("gemini-unknown")  # 404: ignored, the table still answers
    assert provider.capabilities("gemini-unknown") == ModelCapabilities(1_048_576, 8_192)
    fake.push(Reply(text="ok"))
    request = ChatRequest("gemini-2.0-flash", "", [Message("user", "hi")], [], max_tokens=16384)
    _ = [c async for c in provider.stream(request)]
    assert fake.posts[-1].json["generationConfig"]["maxOutputTokens"] == 8_192
    await provider.aclose()


async def test_probe_ignores_an_unreachable_server() -> None:
    provider = GeminiProvider(HOSTS["gemini"], api_key=KEY, base_url="http://127.0.0.1:9")
    await provider.probe("gemini-2.5-flash")
    assert provider.capabilities("gemini-2.5-flash").context_window == 1_048_576
    await provider.aclose()


def test_cost_uses_the_price_table() -> None:
    provider = GeminiProvider(HOSTS["gemini"], api_key=KEY, base_url="http://127.0.0.1:9")
    usage = TokenUsage(prompt=1_000_000, completion=1_000_000, cache_read=1_000_000)
    assert provider.cost_usd("gemini-2.5-flash", usage) == pytest.approx(0.3 + 2.5 + 0.075)
    assert provider.cost_usd("gemini-0-experimental", usage) is None


async def test_catalog_builds_it_from_the_environment(fake: GeminiFake) -> None:
    env = {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.url + "/"}
    provider = create_provider(KodaConfig(provider="google"), env)
    assert isinstance(provider, GeminiProvider) and provider.name == "gemini"
    assert provider.default_model == "gemini-2.5-flash"
    fake.push(Reply(text="from the catalog"))
    request = ChatRequest(provider.default_model, "", [Message("user", "hi")], [])
    chunks = [c async for c in provider.stream(request)]
    await provider.aclose()
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == "from the catalog"
