"""The scripted provider: loading scripts, replaying them, recording requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koda.config import KodaConfig
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
    ToolCall,
    ToolCallChunk,
    ToolDefinition,
)
from koda.providers.catalog import ProviderSetupError, create_provider, resolve_host
from koda.providers.scripted import ScriptedProvider, ScriptError, load_script


def request(text: str = "hi") -> ChatRequest:
    return ChatRequest(
        model="scripted",
        system="sys",
        messages=[Message(role="user", content=text)],
        tools=[ToolDefinition("Read", "reads", {"type": "object"})],
    )


async def collect(provider: ScriptedProvider, req: ChatRequest | None = None) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(req or request())]


def test_load_inline_list_and_object_forms() -> None:
    as_list = load_script('[{"text": "a"}, {"text": "b"}]')
    as_object = load_script('  {"responses": [{"text": "a"}, {"text": "b"}]}')
    assert as_list == as_object
    assert [r.text for r in as_list] == ["a", "b"]


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(
        json.dumps(
            [
                {
                    "thinking": "hm",
                    "text": "hello",
                    "chunk_size": 2,
                    "delay_ms": 1,
                    "first_delay_ms": 2,
                },
                {
                    "tool_calls": [
                        {"id": "x", "name": "Read", "args": {"path": "a"}},
                        {"name": "Glob", "arguments": {}},
                    ]
                },
                {"error": "rate_limit", "message": "wait", "retry_after": 1.5},
                {"text": "t", "usage": {"prompt": 3, "completion": 4}, "stop_reason": "max_tokens"},
            ]
        ),
        encoding="utf-8",
    )
    script = load_script(str(path))
    assert len(script) == 4
    assert (
        script[0].thinking,
        script[0].chunk_size,
        script[0].delay_ms,
        script[0].first_delay_ms,
    ) == ("hm", 2, 1, 2)
    assert script[1].tool_calls == [
        ToolCall("x", "Read", {"path": "a"}),
        ToolCall("call_2_2", "Glob", {}),
    ]
    assert (script[2].error, script[2].message, script[2].retry_after) == (
        "rate_limit",
        "wait",
        1.5,
    )
    assert script[3].usage == {"prompt": 3, "completion": 4}


def test_missing_file_is_a_script_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="cannot read the script file"):
        load_script(str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    ("script", "needle"),
    [
        ("[{", "not valid JSON"),
        ('{"responses": "not a list"}', "JSON list"),
        ('{"replies": []}', "JSON list"),
        ('[{"text": "ok"}, 3]', "reply 2"),
        ('[{"text": "ok"}, {"txet": "typo"}]', "reply 2 has unknown keys: txet"),
        ('[{"error": "teapot"}]', "reply 1: error"),
        ('[{"text": "a"}, {"text": "b"}, {"usage": {"tokens": 3}}]', "reply 3: usage"),
        ('[{"usage": [1, 2]}]', "reply 1: usage"),
        ('[{"tool_calls": {"name": "Read"}}]', "reply 1: tool_calls"),
        ('[{"text": "a"}, {"tool_calls": [{"args": {}}]}]', "reply 2, tool call 1"),
        ('[{"tool_calls": [{"name": "Read"}, "Glob"]}]', "reply 1, tool call 2"),
        ('[{"chunk_size": "big"}]', "reply 1"),
        ('[{"delay_ms": "slow"}]', "reply 1"),
        ('[{"text": "a"}, {"usage": {"prompt": "many"}}]', "reply 2"),
        ('[{"error": "rate_limit", "retry_after": "soon"}]', "reply 1"),
        ('[{"text": "a"}, {"stop_reason": 5}]', "reply 2"),
        ('[{"message": ["x"]}]', "reply 1"),
    ],
)
def test_invalid_scripts_name_the_reply(script: str, needle: str) -> None:
    with pytest.raises(ScriptError) as info:
        load_script(script)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


async def test_stream_chunks_and_usage() -> None:
    provider = ScriptedProvider(
        load_script('[{"thinking": "abcd", "text": "hello world", "chunk_size": 4}]')
    )
    chunks = await collect(provider)
    assert [c for c in chunks if isinstance(c, ThinkingChunk)] == [ThinkingChunk("abcd")]
    assert [c.text for c in chunks if isinstance(c, TextChunk)] == ["hell", "o wo", "rld"]
    done = chunks[-1]
    assert isinstance(done, DoneChunk) and done.stop_reason == "end_turn"
    assert done.usage.prompt > 0 and done.usage.completion > 0


async def test_tool_calls_and_scripted_usage() -> None:
    provider = ScriptedProvider(
        load_script(
            json.dumps(
                [
                    {
                        "tool_calls": [{"id": "c", "name": "Read", "args": {"path": "x"}}],
                        "usage": {"prompt": 9},
                    }
                ]
            )
        )
    )
    chunks = await collect(provider)
    assert chunks == [
        ToolCallChunk(ToolCall("c", "Read", {"path": "x"})),
        DoneChunk(TokenUsage(prompt=9), "tool_use"),
    ]


@pytest.mark.parametrize(
    ("kind", "cls", "retryable"),
    [
        ("rate_limit", RateLimitError, True),
        ("overloaded", OverloadedError, True),
        ("network", NetworkError, True),
        ("context_overflow", ContextOverflowError, False),
        ("auth", AuthError, False),
        ("server", ProviderError, False),
    ],
)
async def test_errors_raise_their_class(
    kind: str, cls: type[ProviderError], retryable: bool
) -> None:
    provider = ScriptedProvider(
        load_script(json.dumps([{"text": "pre", "error": kind, "retry_after": 2}]))
    )
    seen: list[StreamChunk] = []
    with pytest.raises(ProviderError) as info:
        async for chunk in provider.stream(request()):
            seen.append(chunk)
    assert type(info.value) is cls
    assert info.value.retryable is retryable
    assert info.value.retry_after == 2
    assert info.value.message == f"scripted {kind} error"
    assert seen == [TextChunk("pre")]


async def test_exhausted_script() -> None:
    provider = ScriptedProvider(load_script('[{"text": "one"}]'))
    await collect(provider)
    with pytest.raises(ProviderError) as info:
        await collect(provider)
    assert "no reply left" in info.value.message and "had 1" in info.value.message
    assert not info.value.retryable
    assert len(provider.requests) == 2


async def test_requests_are_recorded_in_memory_and_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    provider = ScriptedProvider(load_script('[{"text": "a"}, {"text": "b"}]'), log_path=str(log))
    first, second = request("first"), request("second")
    await collect(provider, first)
    await collect(provider, second)
    assert provider.requests == [first, second]
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    logged = [json.loads(line) for line in lines]
    assert logged[0] == first.to_json()
    assert logged[1]["messages"][0]["content"] == "second"
    assert logged[1]["tools"][0]["name"] == "Read"


async def test_metadata() -> None:
    provider = ScriptedProvider([])
    assert provider.name == "scripted"
    assert await provider.list_models() == ["scripted"]
    assert provider.capabilities("scripted").context_window > 0


def test_catalog_builds_the_scripted_provider(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    config = KodaConfig(script='[{"text": "x"}]', script_log=str(log))
    assert resolve_host(config, env={}).name == "scripted"
    provider = create_provider(config, env={})
    assert provider.name == "scripted"


def test_catalog_errors_are_setup_errors() -> None:
    with pytest.raises(ProviderSetupError, match="No model provider"):
        create_provider(KodaConfig(), env={})
    with pytest.raises(ProviderSetupError, match="invalid"):
        create_provider(KodaConfig(provider="scripted", script="[3]"), env={})
    with pytest.raises(ProviderSetupError, match="needs a script"):
        create_provider(KodaConfig(provider="scripted"), env={})
    with pytest.raises(ProviderSetupError, match="Unknown provider"):
        create_provider(KodaConfig(provider="nobody"), env={})
    assert resolve_host(KodaConfig(), env={"OPENAI_API_KEY": "k"}).name == "openai"
