"""What the Anthropic adapter puts on the wire: URL, headers, body, history conversion, caching,
thinking parameters; and the models endpoint (list_models, probe, capabilities)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from fakes.anthropic_fake import AnthropicFake, Reply
from koda.providers.anthropic import AnthropicProvider, build_body, sanitize_id
from koda.providers.base import (
    ChatRequest,
    ImageData,
    Message,
    ModelCapabilities,
    StreamChunk,
    TokenUsage,
    ToolCall,
    ToolDefinition,
)
from koda.providers.hosts import HOSTS
from koda.providers.models import table_capabilities

MODEL = "claude-sonnet-4-6"
TOOLS = [
    ToolDefinition("Read", "Read a file", {"type": "object", "properties": {"path": {}}}),
    ToolDefinition("Bash", "Run a command", {"type": "object", "properties": {"command": {}}}),
]
EPH = {"type": "ephemeral"}


@pytest.fixture
def fake() -> Iterator[AnthropicFake]:
    with AnthropicFake() as server:
        yield server


@pytest.fixture
async def provider(fake: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(HOSTS["anthropic"], api_key="sk-ant-test", base_url=fake.url)
    yield p
    await p.aclose()


def req(messages: list[Message], **kw: Any) -> ChatRequest:
    kw.setdefault("max_tokens", 8192)
    return ChatRequest(MODEL, "You are Koda.", messages, TOOLS, **kw)


async def drain(provider: AnthropicProvider, request: ChatRequest) -> list[StreamChunk]:
    return [c async for c in provider.stream(request)]


# -- the request line, headers and body ---------------------------------------------------------


async def test_request_line_headers_and_body(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.push(Reply(text="hi"))
    await drain(provider, req([Message("user", "hello")]))
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": MODEL,
        "max_tokens": 8192,
        "system": [{"type": "text", "text": "You are Koda.", "cache_control": EPH}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": EPH}]}
        ],
        "tools": [
            {"name": "Read", "description": "Read a file",
             "input_schema": {"type": "object", "properties": {"path": {}}}},
            {"name": "Bash", "description": "Run a command",
             "input_schema": {"type": "object", "properties": {"command": {}}},
             "cache_control": EPH},
        ],
        "stream": True,
    }  # fmt: skip


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_base_url_root_or_v1_is_never_doubled(fake: AnthropicFake, suffix: str) -> None:
    provider = AnthropicProvider(HOSTS["anthropic"], api_key="k", base_url=fake.url + suffix)
    fake.push(Reply(text="ok"))
    await drain(provider, req([Message("user", "hi")]))
    assert await provider.list_models()
    await provider.aclose()
    assert [r.path for r in fake.requests] == ["/v1/messages", "/v1/models"]


def test_temperature_sent_only_when_set_and_never_with_thinking() -> None:
    history = [Message("user", "hi")]
    assert "temperature" not in build_body(req(history))
    assert build_body(req(history, temperature=0.3))["temperature"] == 0.3
    body = build_body(req(history, temperature=0.3, thinking_budget=2048, max_tokens=1024))
    assert "temperature" not in body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 2048 + 4096


@pytest.mark.parametrize(
    ("budget", "max_tokens", "sent_budget", "sent_max"),
    [(2048, 16384, 2048, 16384), (10000, 8192, 10000, 14096), (100, 8192, 1024, 8192)],
)
def test_thinking_budget_and_max_tokens(
    budget: int, max_tokens: int, sent_budget: int, sent_max: int
) -> None:
    body = build_body(req([Message("user", "hi")], thinking_budget=budget, max_tokens=max_tokens))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": sent_budget}
    assert body["max_tokens"] == sent_max
    assert body["thinking"]["budget_tokens"] < body["max_tokens"]


def test_no_thinking_param_without_a_budget() -> None:
    assert "thinking" not in build_body(req([Message("user", "hi")], thinking_budget=None))
    assert "thinking" not in build_body(req([Message("user", "hi")], thinking_budget=0))


# -- history conversion -----------------------------------------------------------------------


def test_history_conversion() -> None:
    png = ImageData("image/png", "iVBORw0KGgo=")
    history = [
        Message("user", "look at this", images=[png]),
        Message("assistant", "Reading two files.", thinking="plan", thinking_signature="sig-A",
                tool_calls=[ToolCall("toolu_1", "Read", {"path": "a"}),
                            ToolCall("call:2.x", "Read", {"path": "b"})]),
        Message("tool", "contents of a", tool_call_id="toolu_1", tool_name="Read"),
        Message("tool", "contents of b", tool_call_id="call:2.x", tool_name="Read"),
        Message("user", "and also this"),
        Message("assistant", "Done.", thinking="from another provider", thinking_signature=None),
        Message("tool", "orphan", tool_call_id="nowhere", tool_name="Read"),
        Message("user", "thanks"),
    ]  # fmt: skip
    messages = build_body(req(history))["messages"]
    b_id = sanitize_id("call:2.x")
    assert messages == [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "look at this"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "plan", "signature": "sig-A"},
            {"type": "text", "text": "Reading two files."},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}},
            {"type": "tool_use", "id": b_id, "name": "Read", "input": {"path": "b"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "contents of a"},
            {"type": "tool_result", "tool_use_id": b_id, "content": "contents of b"},
            {"type": "text", "text": "and also this"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
        {"role": "user", "content": [{"type": "text", "text": "thanks", "cache_control": EPH}]},
    ]  # fmt: skip


def test_sanitized_ids_are_valid_stable_and_distinct() -> None:
    ids = ["call:1", "call.1", "call 1", "", "ok_id-1", "fc/abc==", "id\n", "émoji✓"]
    out = [sanitize_id(i) for i in ids]
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", o) for o in out)
    assert len(set(out)) == len(out)
    assert sanitize_id("ok_id-1") == "ok_id-1"
    assert [sanitize_id(i) for i in ids] == out


def test_an_unanswered_call_gets_a_closing_result() -> None:
    history = [
        Message("user", "go"),
        Message("assistant", "", tool_calls=[ToolCall("t1", "Bash", {"command": "ls"}),
                                             ToolCall("t2", "Bash", {"command": "pwd"})]),
        Message("tool", "file.txt", tool_call_id="t1", tool_name="Bash"),
        Message("user", "stop that"),
    ]  # fmt: skip
    messages = build_body(req(history))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    content = messages[2]["content"]
    assert [b["type"] for b in content] == ["tool_result", "tool_result", "text"]
    assert [b["tool_use_id"] for b in content[:2]] == ["t1", "t2"]
    assert "no result" in content[1]["content"]


def test_empty_parts_never_reach_the_wire() -> None:
    history = [
        Message("user", ""),
        Message("assistant", "", thinking="only thinking", thinking_signature="s"),
        Message("assistant", "   "),
        Message("user", "real question"),
        Message("assistant", "", tool_calls=[ToolCall("t1", "Read", {})]),
        Message("tool", "", tool_call_id="t1", tool_name="Read"),
    ]
    messages = build_body(req(history))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    texts = [b.get("text") for m in messages for b in m["content"] if b["type"] == "text"]
    assert all(t and t.strip() for t in texts)
    assert messages[0]["content"][-1]["text"] == "real question"
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "cache_control": EPH}
    ]


def test_thinking_is_skipped_when_an_open_tool_loop_began_without_it() -> None:
    """With thinking on, the API rejects a tool loop whose assistant turn lacks a thinking block
    (e.g. begun by another provider); that request goes without thinking instead."""
    loop = [
        Message("user", "go"),
        Message("assistant", "", tool_calls=[ToolCall("t1", "Read", {"path": "a"})]),
        Message("tool", "a", tool_call_id="t1", tool_name="Read"),
    ]
    assert "thinking" not in build_body(req(loop, thinking_budget=2048))
    signed = [loop[0], Message("assistant", "", thinking="hm", thinking_signature="s",
                               tool_calls=loop[1].tool_calls), loop[2]]  # fmt: skip
    assert "thinking" in build_body(req(signed, thinking_budget=2048))
    # Text typed into the loop keeps it open; an answered loop and a new prompt do not.
    assert "thinking" not in build_body(req([*loop, Message("user", "hm")], thinking_budget=2048))
    done = [*loop, Message("assistant", "a is a"), Message("user", "next")]
    assert "thinking" in build_body(req(done, thinking_budget=2048))


# -- prompt caching and stable bodies ---------------------------------------------------------


def _count_breakpoints(node: Any) -> int:
    if isinstance(node, dict):
        return int("cache_control" in node) + sum(_count_breakpoints(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_breakpoints(v) for v in node)
    return 0


def test_cache_breakpoints_on_system_tools_and_tail() -> None:
    history = [
        Message("user", "a"),
        Message("assistant", "", tool_calls=[ToolCall("t1", "Read", {"path": "x"})]),
        Message("tool", "x!", tool_call_id="t1", tool_name="Read"),
    ]
    body = build_body(req(history))
    assert _count_breakpoints(body) == 3
    assert body["system"][-1]["cache_control"] == EPH
    assert body["tools"][-1]["cache_control"] == EPH
    assert body["messages"][-1]["content"][-1]["cache_control"] == EPH
    no_tools = build_body(ChatRequest(MODEL, "", [Message("user", "a")], []))
    assert _count_breakpoints(no_tools) == 1 and "system" not in no_tools


def _without_cache_control(message: dict[str, Any]) -> dict[str, Any]:
    return {
        **message,
        "content": [
            {k: v for k, v in b.items() if k != "cache_control"} for b in message["content"]
        ],
    }


def test_a_longer_history_extends_the_previous_body() -> None:
    h1 = [
        Message("user", "read a"),
        Message("assistant", "ok", thinking="t", thinking_signature="s",
                tool_calls=[ToolCall("t1", "Read", {"path": "a", "z": 1, "b": [2]})]),
        Message("tool", "A", tool_call_id="t1", tool_name="Read"),
    ]  # fmt: skip
    h2 = [*h1, Message("assistant", "A says A."), Message("user", "thanks")]
    first, second = build_body(req(h1)), build_body(req(h2))
    assert json.dumps(build_body(req(h1))) == json.dumps(first)  # deterministic
    n = len(first["messages"])
    assert json.dumps(second["messages"][: n - 1]) == json.dumps(first["messages"][: n - 1])
    # Only the moving tail breakpoint differs on the last shared message.
    assert second["messages"][n - 1] == _without_cache_control(first["messages"][n - 1])
    assert json.dumps(second["system"]) == json.dumps(first["system"])
    assert json.dumps(second["tools"]) == json.dumps(first["tools"])


# -- models, capabilities, cost -----------------------------------------------------------------


async def test_list_models_pages_through(fake: AnthropicFake, provider: AnthropicProvider) -> None:
    fake.models += [
        {"type": "model", "id": f"claude-extra-{i}", "display_name": f"x{i}",
         "created_at": "2025-01-01T00:00:00Z"}
        for i in range(1100)
    ]  # fmt: skip
    ids = await provider.list_models()
    assert ids[:2] == ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
    assert len(ids) == 1102
    gets = [r for r in fake.requests if r.path == "/v1/models"]
    assert len(gets) == 2 and gets[1].query["after_id"] == [ids[999]]
    assert gets[0].headers["x-api-key"] == "sk-ant-test"
    assert gets[0].headers["anthropic-version"] == "2023-06-01"


async def test_probe_learns_the_window_from_the_api(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.models.append({"type": "model", "id": "claude-test-1-20990101", "display_name": "T",
                        "created_at": "2099-01-01T00:00:00Z", "max_input_tokens": 123_456,
                        "max_tokens": 7_000})  # fmt: skip
    fake.aliases["claude-test-1"] = "claude-test-1-20990101"
    assert provider.capabilities("claude-test-1") == table_capabilities("claude-test-1")
    await provider.probe("claude-test-1")  # an alias: the API answers with the dated id
    assert [r.path for r in fake.requests] == ["/v1/models/claude-test-1"]
    assert fake.requests[0].headers["x-api-key"] == "sk-ant-test"
    for model in ("claude-test-1", "claude-test-1-20990101"):
        assert provider.capabilities(model) == ModelCapabilities(123_456, 7_000)


async def test_list_models_teaches_the_windows_it_lists(
    fake: AnthropicFake, provider: AnthropicProvider
) -> None:
    fake.models.append(
        {"type": "model", "id": "claude-test-2", "display_name": "T",
         "created_at": "2099-01-01T00:00:00Z", "max_input_tokens": 99_000}
    )  # fmt: skip
    assert "claude-test-2" in await provider.list_models()
    assert provider.capabilities("claude-test-2") == ModelCapabilities(
        99_000, table_capabilities("claude-test-2").max_output_tokens
    )


async def test_probe_without_window_info_or_unknown_model_keeps_the_table(
    provider: AnthropicProvider,
) -> None:
    await provider.probe("claude-haiku-4-5-20251001")  # listed without max_input_tokens
    await provider.probe("claude-unknown-9")  # 404
    for model in ("claude-haiku-4-5-20251001", "claude-unknown-9"):
        assert provider.capabilities(model) == table_capabilities(model)


async def test_probe_never_raises_when_the_server_is_gone() -> None:
    provider = AnthropicProvider(HOSTS["anthropic"], api_key="k", base_url="http://127.0.0.1:9")
    await provider.probe("claude-sonnet-4-5")
    await provider.probe("")
    assert provider.capabilities("claude-sonnet-4-5") == table_capabilities("claude-sonnet-4-5")
    await provider.aclose()


def test_cost_uses_the_price_table() -> None:
    provider = AnthropicProvider(HOSTS["anthropic"], api_key="k", base_url="http://x")
    usage = TokenUsage(prompt=1_000_000, completion=1_000_000, cache_read=1_000_000,
                       cache_write=1_000_000)  # fmt: skip
    assert provider.cost_usd("claude-sonnet-4-5", usage) == pytest.approx(3 + 15 + 0.3 + 3.75)
    assert provider.cost_usd("mystery-model", usage) is None
    assert provider.name == "anthropic" and provider.default_model


async def test_the_catalog_builds_it_from_the_environment(fake: AnthropicFake) -> None:
    from koda.config import KodaConfig
    from koda.providers.catalog import create_provider

    env = {"ANTHROPIC_API_KEY": "sk-from-env", "ANTHROPIC_BASE_URL": fake.url + "/"}
    provider = create_provider(KodaConfig(provider="claude"), env)
    assert isinstance(provider, AnthropicProvider)
    fake.push(Reply(text="hi"))
    chunks = [c async for c in provider.stream(req([Message("user", "hello")]))]
    await provider.aclose()
    assert chunks
    assert fake.requests[0].headers["x-api-key"] == "sk-from-env"
    assert fake.requests[0].path == "/v1/messages"
