"""OpenAICompatProvider against the fake server: request bodies, stream parsing, faults, models."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from fakes.openai_fake import (
    Call,
    OpenAIFake,
    Reply,
    chunk_events,
    context_overflow,
    error_reply,
    overloaded,
    rate_limited,
)
from koda.providers.base import (
    AuthError,
    ChatRequest,
    ContextOverflowError,
    DoneChunk,
    ImageData,
    Message,
    ModelCapabilities,
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
from koda.providers.hosts import HOSTS
from koda.providers.models import table_capabilities
from koda.providers.openai_compat import OpenAICompatProvider, StreamParser
from koda.providers.sse import SseEvent

TOOLS = [
    ToolDefinition("Read", "Read a file.", {"type": "object", "properties": {}}),
    ToolDefinition("Bash", "Run a command.", {"type": "object", "properties": {}}),
]


@pytest.fixture
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake() as server:
        yield server


@pytest.fixture
async def provider(fake: OpenAIFake) -> AsyncIterator[OpenAICompatProvider]:
    p = OpenAICompatProvider(HOSTS["openai"], api_key="sk-test", base_url=fake.base_url)
    yield p
    await p.aclose()


def req(messages: list[Message] | None = None, **kw: Any) -> ChatRequest:
    return ChatRequest(
        model=kw.pop("model", "gpt-4.1"),
        system=kw.pop("system", "You are Koda."),
        messages=messages if messages is not None else [Message(role="user", content="hi")],
        tools=kw.pop("tools", TOOLS),
        **kw,
    )


async def collect(provider: OpenAICompatProvider, request: ChatRequest) -> list[StreamChunk]:
    return [c async for c in provider.stream(request)]


def text_of(chunks: list[StreamChunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextChunk))


def thinking_of(chunks: list[StreamChunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, ThinkingChunk))


def calls_of(chunks: list[StreamChunk]) -> list[ToolCall]:
    return [c.call for c in chunks if isinstance(c, ToolCallChunk)]


def done_of(chunks: list[StreamChunk]) -> DoneChunk:
    assert isinstance(chunks[-1], DoneChunk)
    return chunks[-1]


def one_sentence(exc: ProviderError) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# -- the request --------------------------------------------------------------------------


async def test_request_body_and_headers(fake: OpenAIFake, provider: OpenAICompatProvider) -> None:
    fake.push(Reply(text="ok"))
    history = [
        Message(role="user", content="look", images=[ImageData("image/jpeg", "QUJD")]),
        Message(
            role="assistant",
            content="",
            thinking="private reasoning",
            thinking_signature="sig",
            tool_calls=[ToolCall("call_1", "Read", {"path": "a.txt", "n": [1, "é"]})],
        ),
        Message(role="tool", content="file text", tool_call_id="call_1", tool_name="Read"),
        Message(role="assistant", content="Done reading."),
        Message(role="user", content="thanks"),
    ]
    await collect(provider, req(history, temperature=0.2, reasoning_effort="low", max_tokens=1234))
    [recorded] = [r for r in fake.requests if r.path == "/v1/chat/completions"]
    assert recorded.method == "POST"
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.json == {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are Koda."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "Read",
                            "arguments": json.dumps({"path": "a.txt", "n": [1, "é"]}),
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "file text"},
            {"role": "assistant", "content": "Done reading."},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "Read",
                    "description": "Read a file.",
                    "parameters": {"type": "object", "properties": {}},
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "Bash",
                    "description": "Run a command.",
                    "parameters": {"type": "object", "properties": {}},
                },
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 1234,
        "temperature": 0.2,
        "reasoning_effort": "low",
    }
    assert "private reasoning" not in recorded.raw.decode()


@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-5", "gpt-5-mini", "o1"])
def test_openai_reasoning_models_get_max_completion_tokens_and_no_temperature(
    model: str,
) -> None:
    p = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url="http://127.0.0.1:9/v1")
    body = p.build_body(req(model=model, temperature=0.5, max_tokens=999))
    assert body["max_completion_tokens"] == 999
    assert "max_tokens" not in body and "temperature" not in body


def test_other_models_and_hosts_get_max_tokens() -> None:
    openai = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url="http://127.0.0.1:9/v1")
    body = openai.build_body(req(model="gpt-4.1", temperature=0.5, max_tokens=999))
    assert (body["max_tokens"], body["temperature"]) == (999, 0.5)
    groq = OpenAICompatProvider(HOSTS["groq"], api_key="k", base_url="http://127.0.0.1:9/v1")
    body = groq.build_body(req(model="openai/gpt-oss-120b", max_tokens=777))
    assert body["max_tokens"] == 777 and "max_completion_tokens" not in body


def test_no_tools_no_system_means_no_such_keys() -> None:
    p = OpenAICompatProvider(HOSTS["vllm"], api_key=None, base_url="http://127.0.0.1:9/v1")
    body = p.build_body(req(tools=[], system=""))
    assert "tools" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "temperature" not in body and "reasoning_effort" not in body


async def test_local_server_gets_no_authorization_header(fake: OpenAIFake) -> None:
    fake.push(Reply(text="hello"))
    p = OpenAICompatProvider(HOSTS["ollama"], api_key=None, base_url=fake.base_url)
    try:
        assert text_of(await collect(p, req(model="qwen3:8b"))) == "hello"
    finally:
        await p.aclose()
    assert "authorization" not in fake.requests[0].headers


def test_tool_results_without_a_call_and_calls_without_a_result_never_reach_the_wire() -> None:
    p = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url="http://127.0.0.1:9/v1")
    history = [
        Message(role="user", content="go"),
        Message(role="tool", content="orphan", tool_call_id="nobody", tool_name="Read"),
        Message(
            role="assistant",
            content="two calls",
            tool_calls=[ToolCall("a", "Read", {}), ToolCall("b", "Read", {})],
        ),
        Message(role="tool", content="ra", tool_call_id="a", tool_name="Read"),
        Message(role="tool", content="again", tool_call_id="a", tool_name="Read"),
        Message(role="user", content="next"),
        Message(role="assistant", content="", tool_calls=[ToolCall("c", "Read", {})]),
        Message(role="user", content="last"),
    ]
    wire = p.wire_messages(req(history, system=""))
    assert wire == [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": "two calls",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "Read", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "ra"},
        {"role": "user", "content": "next"},
        {"role": "user", "content": "last"},
    ]


def _ids(wire: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    calls = [c["id"] for m in wire for c in m.get("tool_calls", [])]
    results = [m["tool_call_id"] for m in wire if m["role"] == "tool"]
    return calls, results


def _history_with_ids(*ids: str) -> list[Message]:
    return [
        Message(role="user", content="go"),
        Message(role="assistant", content="", tool_calls=[ToolCall(i, "Read", {}) for i in ids]),
        *[Message(role="tool", content=f"r{n}", tool_call_id=i) for n, i in enumerate(ids)],
    ]


def test_foreign_tool_call_ids_are_made_acceptable_and_stay_paired() -> None:
    long_id = "toolu_" + "x" * 60
    odd = "functions.Read:0"  # Kimi-style, from another gateway
    p = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url="http://127.0.0.1:9/v1")
    history = _history_with_ids(long_id, odd, "", "toolu_" + "x" * 59 + "y")
    wire = p.wire_messages(req(history))
    calls, results = _ids(wire)
    assert calls == results
    assert all(0 < len(i) <= 40 for i in calls)
    assert len(set(calls)) == 4  # distinct ids stay distinct, even with a shared long prefix
    assert all(c.replace("_", "").replace("-", "").isalnum() for c in calls)
    assert [m["content"] for m in wire if m["role"] == "tool"] == ["r0", "r1", "r2", "r3"]
    assert p.wire_messages(req(history)) == wire  # the same every time
    plain = p.wire_messages(req(_history_with_ids("call_abc")))
    assert _ids(plain) == (["call_abc"], ["call_abc"])


def test_mistral_gets_nine_character_ids() -> None:
    p = OpenAICompatProvider(HOSTS["mistral"], api_key="k", base_url="http://127.0.0.1:9/v1")
    calls, results = _ids(p.wire_messages(req(_history_with_ids("call_1_1", "AbC123xyZ", ""))))
    assert calls == results
    assert calls[1] == "AbC123xyZ"
    assert all(len(i) == 9 and i.isalnum() for i in calls) and len(set(calls)) == 3


def test_bodies_are_deterministic_and_append_only() -> None:
    p = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url="http://127.0.0.1:9/v1")
    history = _history_with_ids("toolu_" + "q" * 50, "")
    first = p.build_body(req(history))
    assert json.dumps(first) == json.dumps(p.build_body(req(list(history))))
    longer = p.build_body(req([*history, Message(role="assistant", content="done")]))
    n = len(first["messages"])
    assert json.dumps(longer["messages"][:n]) == json.dumps(first["messages"])
    assert longer["tools"] == first["tools"]


# -- the answer ---------------------------------------------------------------------------


async def test_text_tool_calls_and_usage(fake: OpenAIFake, provider: OpenAICompatProvider) -> None:
    fake.push(
        Reply(
            text="Let me look.",
            tool_calls=[Call("Read", {"path": "x.py"}, id="call_A"), Call("Bash", {"cmd": "ls"})],
            prompt_tokens=1000,
            cached_tokens=600,
            completion_tokens=50,
            reasoning_tokens=20,
            arg_chunk=2,
        )
    )
    chunks = await collect(provider, req())
    assert text_of(chunks) == "Let me look."
    calls = calls_of(chunks)
    assert [(c.name, c.arguments) for c in calls] == [
        ("Read", {"path": "x.py"}),
        ("Bash", {"cmd": "ls"}),
    ]
    assert calls[0].id == "call_A" and calls[1].id
    done = done_of(chunks)
    assert done.stop_reason == "tool_use"
    assert done.usage == TokenUsage(prompt=400, completion=50, cache_read=600, thinking=20)
    # Tool calls come only after all text, and only once complete.
    kinds = [type(c).__name__ for c in chunks]
    assert kinds.index("ToolCallChunk") > max(i for i, k in enumerate(kinds) if k == "TextChunk")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_fields_become_thinking(fake: OpenAIFake, field: str) -> None:
    fake.push(Reply(reasoning="step one, step two", reasoning_field=field, text="Answer."))
    p = OpenAICompatProvider(HOSTS["deepseek"], api_key="k", base_url=fake.base_url)
    try:
        chunks = await collect(p, req(model="deepseek-reasoner"))
    finally:
        await p.aclose()
    assert thinking_of(chunks) == "step one, step two"
    assert text_of(chunks) == "Answer."
    first_text = next(i for i, c in enumerate(chunks) if isinstance(c, TextChunk))
    assert all(isinstance(c, ThinkingChunk) for c in chunks[:first_text])


async def test_think_tags_and_template_tokens_from_a_local_model(fake: OpenAIFake) -> None:
    fake.push(
        Reply(chunks=["<th", "ink>\nThe user", " wants 2+2.</thi", "nk>\n\nIt is ", "4.<|im_end|>"])
    )
    p = OpenAICompatProvider(HOSTS["lmstudio"], api_key=None, base_url=fake.base_url)
    try:
        chunks = await collect(p, req(model="qwen3-8b"))
    finally:
        await p.aclose()
    assert thinking_of(chunks) == "The user wants 2+2."
    assert text_of(chunks) == "It is 4."
    assert done_of(chunks).stop_reason == "end_turn"


def test_openai_itself_keeps_tag_like_text() -> None:
    official = HOSTS["openai"]
    p = OpenAICompatProvider(official, api_key="k", base_url=official.base_url)
    assert p._filter_tags is False  # no request is made here
    parser = StreamParser("openai", filter_tags=False)
    delta = {"content": "<think>kept</think>"}
    assert parser.feed_object({"choices": [{"index": 0, "delta": delta}]}) == [
        TextChunk("<think>kept</think>")
    ]


async def test_a_custom_openai_base_url_is_filtered(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    # OPENAI_BASE_URL may point at a gateway or a local server running an open-weights model.
    fake.push(Reply(text="<think>hidden</think>shown"))
    chunks = await collect(provider, req())
    assert (thinking_of(chunks), text_of(chunks)) == ("hidden", "shown")


async def test_length_with_a_cut_tool_call_drops_it_and_says_max_tokens(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(
        Reply(
            text="Writing",
            tool_calls=[Call("Read", {"path": "a"}), Call("Bash", '{"cmd": "echo hel')],
            finish_reason="length",
        )
    )
    chunks = await collect(provider, req())
    assert [c.name for c in calls_of(chunks)] == ["Read"]  # the complete one is kept
    assert done_of(chunks).stop_reason == "max_tokens"
    assert text_of(chunks) == "Writing"


async def test_invalid_tool_arguments_without_length_are_a_network_error(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(Reply(tool_calls=[Call("Bash", '{"cmd": "ls"')]))
    with pytest.raises(NetworkError) as err:
        await collect(provider, req())
    assert "discarded" in one_sentence(err.value)


async def test_a_non_object_argument_is_malformed_too(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(Reply(tool_calls=[Call("Bash", "[1, 2]")]))
    with pytest.raises(NetworkError):
        await collect(provider, req())


async def test_empty_arguments_mean_no_arguments(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(Reply(tool_calls=[Call("Read", "")]))
    assert calls_of(await collect(provider, req()))[0].arguments == {}


@pytest.mark.parametrize(
    "reply",
    [
        Reply(
            text="partial answer", tool_calls=[Call("Bash", {"cmd": "rm -rf build"})], done=False
        ),
        Reply(text="partial answer", drop_after=3),
        Reply(text="partial answer", malformed_at=2),
        Reply(text="partial", tool_calls=[Call("Read", {})], drop_after=4),
    ],
    ids=["no-done", "dropped", "malformed", "dropped-mid-call"],
)
async def test_incomplete_or_broken_streams_raise_network_error_and_no_done(
    fake: OpenAIFake, provider: OpenAICompatProvider, reply: Reply
) -> None:
    fake.push(reply)
    seen: list[StreamChunk] = []
    with pytest.raises(NetworkError) as err:
        async for chunk in provider.stream(req()):
            seen.append(chunk)
    one_sentence(err.value)
    assert err.value.retryable
    assert not any(isinstance(c, DoneChunk | ToolCallChunk) for c in seen)


async def test_done_without_a_finish_reason_is_incomplete() -> None:
    parser = StreamParser("openai")
    events = chunk_events(Reply(text="hi"), "m", include_usage=False)[:-1]  # no finish chunk
    for data in events:
        parser.feed(SseEvent("message", data))
    parser.feed(SseEvent("message", "[DONE]"))
    with pytest.raises(NetworkError, match="finish reason"):
        parser.finish()


@pytest.mark.parametrize(
    ("error", "cls", "words"),
    [
        ({"message": "The server had an error", "type": "server_error", "code": None},
         OverloadedError, "overloaded"),
        ({"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"},
         RateLimitError, "rate limiting"),
        ({"message": "This model's maximum context length is 8192 tokens", "type":
          "invalid_request_error", "code": "context_length_exceeded"},
         ContextOverflowError, "too long"),
        ({"message": "Provider returned error", "code": 502}, OverloadedError, "HTTP 502"),
        ({"message": "Something odd", "type": "invalid_request_error", "code": None},
         ProviderError, "Something odd"),
    ],
)  # fmt: skip
async def test_error_inside_the_stream_maps_to_its_class(
    fake: OpenAIFake,
    provider: OpenAICompatProvider,
    error: dict[str, Any],
    cls: type[ProviderError],
    words: str,
) -> None:
    fake.push(Reply(text="start", stream_error=error))
    with pytest.raises(ProviderError) as err:
        await collect(provider, req())
    assert type(err.value) is cls
    assert words in one_sentence(err.value)


async def test_http_errors_map_to_their_classes(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(
        rate_limited(0.25),
        overloaded(),
        context_overflow(),
        error_reply(401, "Incorrect API key provided: sk-test.", "invalid_api_key"),
        error_reply(404, "The model `gpt-9` does not exist or you do not have access to it.",
                    "model_not_found"),
        error_reply(400, "Invalid value for 'temperature'.", None),
    )  # fmt: skip
    expected = [
        (RateLimitError, "Rate limit reached"),
        (OverloadedError, "overloaded"),
        (ContextOverflowError, "maximum context length"),
        (AuthError, "Incorrect API key"),
        (ProviderError, "gpt-9"),
        (ProviderError, "temperature"),
    ]
    for cls, words in expected:
        with pytest.raises(ProviderError) as err:
            await collect(provider, req())
        assert type(err.value) is cls, err.value
        assert words in one_sentence(err.value)
        if cls is RateLimitError:
            assert err.value.retry_after == 0.25 and err.value.retryable


async def test_slow_first_token_still_streams(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(Reply(text="after a pause", first_delay=0.4))
    t0 = time.monotonic()
    chunks = await collect(provider, req())
    assert time.monotonic() - t0 >= 0.4
    assert text_of(chunks) == "after a pause" and done_of(chunks).stop_reason == "end_turn"


async def test_text_arrives_while_the_stream_is_still_going(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(Reply(text="a" * 30, chunk_size=5, delay=0.05))
    t0 = time.monotonic()
    stamps = [(time.monotonic() - t0, c) async for c in provider.stream(req())]
    first_text = next(t for t, c in stamps if isinstance(c, TextChunk))
    assert stamps[-1][0] - first_text >= 0.2  # not buffered until the end


async def test_a_server_that_ignores_stream_true_still_works(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(Reply(text="whole", tool_calls=[Call("Read", {"path": "a"})], whole=True))
    chunks = await collect(provider, req())
    assert text_of(chunks) == "whole"
    assert [c.arguments for c in calls_of(chunks)] == [{"path": "a"}]
    assert done_of(chunks).stop_reason == "tool_use"


async def test_keep_alive_comments_and_a_mislabelled_stream_are_read(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(
        Reply(text="first", preamble=": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n"),
        Reply(text="second", content_type="application/json"),
    )
    assert text_of(await collect(provider, req())) == "first"
    assert text_of(await collect(provider, req())) == "second"


def test_calls_are_assembled_by_index_even_when_interleaved() -> None:
    parser = StreamParser("vllm")

    def tc(**call: Any) -> SseEvent:
        delta = {"tool_calls": [call]}
        return SseEvent("message", json.dumps({"choices": [{"index": 0, "delta": delta}]}))

    for event in [
        tc(index=1, id="c1", function={"name": "Bash", "arguments": ""}),
        tc(index=0, id="c0", function={"name": "Read", "arguments": '{"pa'}),
        tc(index=1, function={"arguments": '{"cmd":'}),
        tc(index=0, function={"arguments": 'th": "x"}'}),
        tc(index=1, function={"arguments": ' "ls"}'}),
        SseEvent("message", json.dumps({"choices": [{"index": 0, "delta": {},
                                                     "finish_reason": "tool_calls"}]})),
        SseEvent("message", "[DONE]"),
    ]:  # fmt: skip
        parser.feed(event)
    out = parser.finish()
    calls = [c.call for c in out if isinstance(c, ToolCallChunk)]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("c0", "Read", {"path": "x"}),
        ("c1", "Bash", {"cmd": "ls"}),
    ]


def test_whole_calls_without_an_index_are_told_apart_by_id() -> None:
    parser = StreamParser("ollama")
    for call_id, path in (("a", "1"), ("b", "2")):
        args = json.dumps({"path": path})
        delta = {"tool_calls": [{"id": call_id, "function": {"name": "Read", "arguments": args}}]}
        parser.feed_object({"choices": [{"index": 0, "delta": delta}]})
    parser.feed_object({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    parser.done = True
    out = parser.finish()
    assert [c.call.arguments for c in out if isinstance(c, ToolCallChunk)] == [
        {"path": "1"},
        {"path": "2"},
    ]
    assert isinstance(out[-1], DoneChunk) and out[-1].stop_reason == "tool_use"


def test_deepseek_cache_hit_tokens_count_as_cache_reads() -> None:
    parser = StreamParser("deepseek")
    usage = {"prompt_tokens": 900, "completion_tokens": 10, "prompt_cache_hit_tokens": 800,
             "prompt_cache_miss_tokens": 100}  # fmt: skip
    parser.feed_object({"choices": [], "usage": usage})
    assert parser.usage == TokenUsage(prompt=100, completion=10, cache_read=800)


# -- models -------------------------------------------------------------------------------


async def test_list_models_reads_data_ids(fake: OpenAIFake, provider: OpenAICompatProvider) -> None:
    assert await provider.list_models() == ["gpt-4.1", "gpt-4o-mini"]
    assert fake.requests[-1].path == "/v1/models"
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    ("host", "entry", "window"),
    [
        ("openrouter", {"context_length": 64_000, "top_provider": {"max_completion_tokens": 9000}},
         ModelCapabilities(64_000, 9000)),
        ("vllm", {"max_model_len": 32_768}, ModelCapabilities(32_768, 2048)),
        ("groq", {"context_window": 131_072}, ModelCapabilities(131_072, 2048)),
    ],
)  # fmt: skip
async def test_probe_learns_the_window_from_the_model_list(
    fake: OpenAIFake, host: str, entry: dict[str, Any], window: ModelCapabilities
) -> None:
    fake.models = [{"id": "other", "object": "model"}, {"id": "vendor/m1", **entry}]
    p = OpenAICompatProvider(HOSTS[host], api_key="k", base_url=fake.base_url)
    try:
        assert p.capabilities("vendor/m1") == table_capabilities("vendor/m1")
        await p.probe("vendor/m1")
        assert p.capabilities("vendor/m1") == window
        assert p.capabilities("other") == table_capabilities("other")
        await p.probe("vendor/m1")
    finally:
        await p.aclose()
    assert len([r for r in fake.requests if r.path == "/v1/models"]) == 1  # learned once


async def test_probe_asks_lm_studio_its_own_api(fake: OpenAIFake) -> None:
    fake.lmstudio_models = [
        {"id": "qwen3-8b", "object": "model", "type": "llm", "state": "loaded",
         "max_context_length": 40_960},
    ]  # fmt: skip
    p = OpenAICompatProvider(HOSTS["lmstudio"], api_key=None, base_url=fake.base_url)
    try:
        await p.probe("qwen3-8b")
        assert p.capabilities("qwen3-8b").context_window == 40_960
    finally:
        await p.aclose()
    assert fake.requests[-1].path == "/api/v0/models"


async def test_ollama_is_not_asked_and_falls_back_to_the_table(fake: OpenAIFake) -> None:
    p = OpenAICompatProvider(HOSTS["ollama"], api_key=None, base_url=fake.base_url)
    try:
        await p.probe("llama3.1:8b")
        assert p.capabilities("llama3.1:8b") == table_capabilities("llama3.1:8b")
        assert await p.list_models() == ["gpt-4.1", "gpt-4o-mini"]
    finally:
        await p.aclose()
    assert [r.path for r in fake.requests] == ["/v1/models"]  # only the explicit listing


async def test_probe_never_raises(fake: OpenAIFake) -> None:
    fake.models = "not a list"  # type: ignore[assignment]
    p = OpenAICompatProvider(HOSTS["vllm"], api_key=None, base_url=fake.base_url)
    dead = OpenAICompatProvider(HOSTS["vllm"], api_key=None, base_url="http://127.0.0.1:9/v1")
    try:
        await p.probe("m")
        await dead.probe("m")
        with pytest.raises(ProviderError):
            await p.list_models()
        # Nothing listens on this machine's port 9: said at once, not retried.
        with pytest.raises(ProviderError, match="Is the server running") as refused:
            await dead.list_models()
        assert not refused.value.retryable
    finally:
        await p.aclose()
        await dead.aclose()
    assert p.capabilities("m") == table_capabilities("m")


def test_cost_and_names() -> None:
    openai = OpenAICompatProvider(HOSTS["openai"], api_key="k", base_url="http://127.0.0.1:9/v1")
    local = OpenAICompatProvider(HOSTS["ollama"], api_key=None, base_url="http://127.0.0.1:9/v1")
    usage = TokenUsage(prompt=1_000_000, completion=0)
    assert openai.cost_usd("gpt-4.1", usage) == pytest.approx(2.0)
    assert openai.cost_usd("some-unknown-model", usage) is None
    assert local.cost_usd("llama3.1:8b", usage) == 0.0
    assert (openai.name, openai.default_model) == ("openai", "gpt-4.1")
    assert (local.name, local.default_model) == ("ollama", "")


async def test_aclose_closes_the_client_and_a_new_stream_reopens_it(
    fake: OpenAIFake, provider: OpenAICompatProvider
) -> None:
    fake.push(Reply(text="one"), Reply(text="two"))
    assert text_of(await collect(provider, req())) == "one"
    client = provider._client
    await provider.aclose()
    assert client is not None and client.is_closed and provider._client is None
    assert text_of(await collect(provider, req())) == "two"
