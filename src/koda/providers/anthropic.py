"""The Anthropic Messages API: requests built from Koda's neutral history, replies streamed back.

POST {root}/v1/messages with `stream: true`; the server-sent events (message_start,
content_block_start/delta/stop, message_delta, message_stop, ping, error) become StreamChunks.
A reply counts as finished only when `message_stop` arrives; anything short of that, or an event
that cannot be read, raises NetworkError so the engine retries instead of keeping half an answer.

Prompt caching: `cache_control` breakpoints on the last system block, the last tool definition
and the last block of the conversation, which moves forward as the conversation grows (three of
the four breakpoints the API allows). Everything before it is serialised identically on every
request, so each request extends the cached prefix of the one before.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx2

from koda.providers import http, models
from koda.providers.adapter import HttpAdapter
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
from koda.providers.hosts import Host
from koda.providers.sse import SseEvent, iter_sse

API_VERSION = "2023-06-01"
THINKING_HEADROOM = 4096  # room for the answer itself above the thinking budget
MIN_THINKING_BUDGET = 1024  # the API's smallest budget
EMPTY_USER_TEXT = "(empty message)"  # the API rejects empty text blocks
MAX_MODEL_PAGES = 20

_ID_OK = re.compile(r"[a-zA-Z0-9_-]+")
_ID_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_-]")

STOP_REASONS = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",  # cut short like max_tokens
    "pause_turn": "end_turn",
    "refusal": "end_turn",
}


class AnthropicProvider(HttpAdapter):
    """Claude through the Messages API (api.anthropic.com or a compatible gateway)."""

    def __init__(self, host: Host, *, api_key: str | None, base_url: str) -> None:
        super().__init__(host, api_key=api_key, base_url=base_url)
        # ANTHROPIC_BASE_URL is the host root; a URL given with /v1 already is accepted too.
        self._root = self.base_url.removesuffix("/v1")

    # -- the protocol ----------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        body = build_body(request)
        parser = StreamParser(self.name)
        try:
            async with http.open_stream(
                self.http(),
                f"{self._root}/v1/messages",
                provider=self.name,
                headers=self._headers(stream=True),
                body=body,
            ) as response:
                async for event in iter_sse(response.aiter_lines()):
                    for chunk in parser.feed(event):
                        yield chunk
                    if parser.finished:
                        break
        except (httpx2.HTTPError, httpx2.StreamError) as exc:
            raise NetworkError(
                f"{self.name}: the reply stream failed ({type(exc).__name__}); it was discarded"
            ) from None
        except httpx2.InvalidURL:
            raise ProviderError(
                f"{self.name}: the base URL {self._root!r} is not a valid URL"
            ) from None
        yield parser.done()

    async def list_models(self) -> list[str]:
        ids: list[str] = []
        after: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            url = f"{self._root}/v1/models?limit=1000"
            if after:
                url += f"&after_id={quote(after, safe='')}"
            data = await self._get(url)
            page = data.get("data") if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise ProviderError(f"{self.name}: the model list was not in the expected shape")
            for item in page:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    ids.append(item["id"])
                    self._learn(item)
            last = data.get("last_id")
            if not data.get("has_more") or not isinstance(last, str) or last == after:
                break
            after = last
        return ids

    async def probe(self, model: str) -> None:
        if not model:
            return
        try:
            data = await self._get(f"{self._root}/v1/models/{quote(model, safe='')}")
        except (ProviderError, httpx2.HTTPError, httpx2.InvalidURL, ValueError):
            return
        if isinstance(data, dict):  # an alias answers with the dated id; learn it for both
            self._learn({**data, "id": model})
            if isinstance(data.get("id"), str):
                self._learn(data)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- helpers ---------------------------------------------------------------------------------

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        if stream:
            headers["content-type"] = "application/json"
            headers["accept"] = "text/event-stream"
        return headers

    async def _get(self, url: str) -> Any:
        try:
            return await http.get_json(
                self.http(), url, provider=self.name, headers=self._headers()
            )
        except httpx2.InvalidURL:
            raise ProviderError(
                f"{self.name}: the base URL {self._root!r} is not a valid URL"
            ) from None

    def _learn(self, item: dict[str, Any]) -> None:
        window = item.get("max_input_tokens")
        if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
            return
        output = item.get("max_tokens")
        if not isinstance(output, int) or isinstance(output, bool) or output <= 0:
            output = models.table_capabilities(str(item["id"])).max_output_tokens
        self.learned[str(item["id"])] = ModelCapabilities(window, output)


# -- the request -------------------------------------------------------------------------------


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The JSON body for `request`: the same history always gives the same bytes."""
    messages = convert_messages(request.messages)
    body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens}
    if request.system.strip():
        body["system"] = [{"type": "text", "text": request.system, "cache_control": _ephemeral()}]
    body["messages"] = messages
    if request.tools:
        body["tools"] = convert_tools(request.tools)
    budget = request.thinking_budget
    if budget is not None and budget > 0 and _thinking_fits(messages):
        budget = max(budget, MIN_THINKING_BUDGET)
        body["max_tokens"] = max(request.max_tokens, budget + THINKING_HEADROOM)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    elif request.temperature is not None:
        body["temperature"] = request.temperature  # the API refuses it alongside thinking
    body["stream"] = True
    _mark_tail(messages)
    return body


def convert_tools(tools: list[ToolDefinition]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
    ]
    if out:
        out[-1]["cache_control"] = _ephemeral()
    return out


def convert_messages(history: list[Message]) -> list[dict[str, Any]]:
    """Neutral history as alternating user/assistant messages of content blocks.

    Tool results become tool_result blocks at the head of a user message (consecutive results
    share one, followed by any user text of the same turn); results whose call is not in the
    assistant message just before are dropped, and calls left without a result are closed with
    a note, so the API's pairing rule always holds.
    """
    out: list[dict[str, Any]] = []
    open_calls: list[str] = []  # wire ids of the last assistant message's calls, unanswered
    answered: set[str] = set()

    def close_calls() -> None:
        missing = [i for i in open_calls if i not in answered]
        if missing:
            blocks = [
                _tool_result(i, "[no result was recorded for this tool call]") for i in missing
            ]
            _append(out, "user", blocks)
        open_calls.clear()
        answered.clear()

    for msg in history:
        if msg.role == "tool":
            call_id = sanitize_id(msg.tool_call_id or "")
            if call_id in open_calls and call_id not in answered:
                answered.add(call_id)
                _append(out, "user", [_tool_result(call_id, msg.content, msg.images)])
            continue
        if msg.role == "assistant":
            blocks = _assistant_blocks(msg)
            if not blocks:
                continue
            close_calls()
            _append(out, "assistant", blocks)
            open_calls.extend(b["id"] for b in blocks if b["type"] == "tool_use")
            continue
        close_calls()
        blocks = [_image(i.media_type, i.data) for i in msg.images]
        if msg.content.strip():
            blocks.append({"type": "text", "text": msg.content})
        _append(out, "user", blocks)
    close_calls()
    for message in out:  # a user message left with nothing to say would be refused
        if not message["content"]:
            message["content"] = [{"type": "text", "text": EMPTY_USER_TEXT}]
    return out


def _assistant_blocks(msg: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    has_answer = bool(msg.content.strip() or msg.tool_calls)
    # Thinking goes back only with Anthropic's signature, and always first; thinking without
    # one (another provider's) cannot be verified by the API and is dropped.
    if has_answer and msg.thinking and msg.thinking_signature:
        blocks.append(
            {"type": "thinking", "thinking": msg.thinking, "signature": msg.thinking_signature}
        )
    if msg.content.strip():
        blocks.append({"type": "text", "text": msg.content})
    seen: set[str] = set()
    for call in msg.tool_calls:
        call_id = sanitize_id(call.id)
        if call_id in seen:
            continue
        seen.add(call_id)
        args = call.arguments if isinstance(call.arguments, dict) else {}
        blocks.append({"type": "tool_use", "id": call_id, "name": call.name, "input": args})
    return blocks


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Add blocks as a message of `role`, joining the message before when it has the same role
    (the API wants turns to alternate). Tool results come before any user text of their turn,
    as the API requires, because calls are closed before the user's message is added."""
    if out and out[-1]["role"] == role:
        # Thinking may only lead an assistant message.
        out[-1]["content"].extend(b for b in blocks if b["type"] != "thinking")
        return
    out.append({"role": role, "content": blocks})


def _tool_result(call_id: str, content: str, images: Sequence[ImageData] = ()) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if images:  # a result with pictures (Read of an image) is a list of text and image blocks
        parts = [{"type": "text", "text": content}] if content.strip() else []
        block["content"] = parts + [_image(i.media_type, i.data) for i in images]
    elif content:
        block["content"] = content
    return block


def _image(media_type: str, data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def sanitize_id(raw: str) -> str:
    """A tool call id in the charset the API accepts; the same input always gives the same id,
    and two different invalid ids do not collide."""
    if _ID_OK.fullmatch(raw):
        return raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return f"{_ID_BAD_CHARS.sub('_', raw)}_{digest}"


def _thinking_fits(messages: list[dict[str, Any]]) -> bool:
    """With thinking on, the API requires the assistant message that began an unfinished tool
    loop to start with a thinking block; a loop begun without one (another provider, thinking
    switched on mid-turn) is continued without thinking. Later steps of the loop need none:
    Claude thinks once at the start of its turn, not again after each tool result."""
    if len(messages) < 2 or not _continues_loop(messages[-1]):
        return True
    start = len(messages) - 2  # the assistant message the trailing results answer
    while start >= 2 and _continues_loop(messages[start - 1]):
        start -= 2  # that message was itself a step of the same loop
    return bool(messages[start]["content"][0]["type"] == "thinking")


def _continues_loop(message: dict[str, Any]) -> bool:
    return message["role"] == "user" and any(b["type"] == "tool_result" for b in message["content"])


def _mark_tail(messages: list[dict[str, Any]]) -> None:
    if not messages:
        return
    last = messages[-1]["content"][-1]
    if last["type"] in ("text", "image", "tool_use", "tool_result"):
        last["cache_control"] = _ephemeral()


def _ephemeral() -> dict[str, str]:
    return {"type": "ephemeral"}


# -- the reply ---------------------------------------------------------------------------------


@dataclass
class _Block:
    kind: str
    call_id: str = ""
    name: str = ""
    initial_input: Any = None
    json_parts: list[str] = field(default_factory=list)
    stopped: bool = False


class StreamParser:
    """Turns the Messages stream's events into chunks; `done()` gives the final DoneChunk."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.started = False
        self.finished = False
        self.stop_reason: str | None = None
        self.usage: dict[str, int] = {}
        self.blocks: dict[int, _Block] = {}
        self.calls = 0
        self.truncated_call: str | None = None

    def malformed(self, what: str) -> NetworkError:
        return NetworkError(
            f"{self.provider} sent a malformed reply stream ({what}); the reply was discarded"
        )

    def feed(self, event: SseEvent) -> list[StreamChunk]:
        if event.event == "ping" or self.finished:
            return []
        try:
            data = json.loads(event.data)
        except ValueError:
            raise self.malformed(f"unreadable {event.event} event") from None
        if not isinstance(data, dict):
            raise self.malformed(f"{event.event} event is not an object")
        kind = data.get("type") or event.event
        if kind == "ping":
            return []
        if kind == "error":
            raise stream_error(self.provider, data)
        if kind == "message_start":
            return self._message_start(data)
        if not self.started and kind in _MESSAGE_EVENTS:
            raise self.malformed(f"{kind} before message_start")
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "content_block_stop":
            return self._block_stop(data)
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            self._message_stop()
        return []  # event types added to the API later are skipped, as its docs ask

    def done(self) -> DoneChunk:
        if not self.finished:
            raise NetworkError(
                f"{self.provider}: the connection closed before the reply finished; "
                "the partial reply was discarded"
            )
        stop = STOP_REASONS.get(self.stop_reason or "", "")
        if not stop:
            stop = "tool_use" if self.calls else "end_turn"
        u = self.usage
        return DoneChunk(
            TokenUsage(
                prompt=u.get("input_tokens", 0),
                completion=u.get("output_tokens", 0),
                cache_read=u.get("cache_read_input_tokens", 0),
                cache_write=u.get("cache_creation_input_tokens", 0),
                thinking=u.get("thinking_tokens", 0),
            ),
            stop,
        )

    # -- events ----------------------------------------------------------------------------------

    def _message_start(self, data: dict[str, Any]) -> list[StreamChunk]:
        message = data.get("message")
        if self.started or not isinstance(message, dict):
            raise self.malformed("unexpected message_start")
        self.started = True
        self._take_usage(message.get("usage"))
        return []

    def _index(self, data: dict[str, Any]) -> int:
        index = data.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise self.malformed(f"{data.get('type')} without a block index")
        return index

    def _block(self, data: dict[str, Any]) -> _Block:
        block = self.blocks.get(self._index(data))
        if block is None or block.stopped:
            raise self.malformed(f"{data.get('type')} for a block that is not open")
        return block

    def _block_start(self, data: dict[str, Any]) -> list[StreamChunk]:
        index = self._index(data)
        raw = data.get("content_block")
        if index in self.blocks or not isinstance(raw, dict):
            raise self.malformed("unexpected content_block_start")
        kind = str(raw.get("type"))
        block = _Block(kind)
        self.blocks[index] = block
        if kind == "text" and isinstance(raw.get("text"), str) and raw["text"]:
            return [TextChunk(raw["text"])]
        if kind == "thinking" and isinstance(raw.get("thinking"), str) and raw["thinking"]:
            return [ThinkingChunk(raw["thinking"])]
        if kind == "tool_use":
            if not isinstance(raw.get("id"), str) or not isinstance(raw.get("name"), str):
                raise self.malformed("a tool_use block without id or name")
            block.call_id, block.name = raw["id"], raw["name"]
            block.initial_input = raw.get("input")
        return []

    def _block_delta(self, data: dict[str, Any]) -> list[StreamChunk]:
        block = self._block(data)
        delta = data.get("delta")
        if not isinstance(delta, dict):
            raise self.malformed("content_block_delta without a delta")
        kind = delta.get("type")
        expected = _DELTA_BLOCK.get(str(kind))
        if expected is None or block.kind not in _DELTA_BLOCK.values():
            return []  # citations and blocks Koda does not use (server tools, redacted thinking)
        value = delta.get(_DELTA_FIELD[str(kind)])
        if block.kind != expected or not isinstance(value, str):
            raise self.malformed(f"{kind} in a {block.kind} block")
        if kind == "text_delta":
            return [TextChunk(value)] if value else []
        if kind == "thinking_delta":
            return [ThinkingChunk(value)] if value else []
        if kind == "signature_delta":
            return [ThinkingChunk("", signature=value)] if value else []
        block.json_parts.append(value)
        return []

    def _block_stop(self, data: dict[str, Any]) -> list[StreamChunk]:
        block = self._block(data)
        block.stopped = True
        if block.kind != "tool_use":
            return []
        raw = "".join(block.json_parts)
        args: Any
        if raw.strip():
            try:
                args = json.loads(raw)
            except ValueError:
                args = None
        else:
            args = block.initial_input if isinstance(block.initial_input, dict) else {}
        if not isinstance(args, dict):
            # Input cut off by max_tokens is expected; anything else is a broken stream. Which
            # one it is, message_delta's stop_reason tells.
            self.truncated_call = block.name
            return []
        self.calls += 1
        return [ToolCallChunk(ToolCall(block.call_id, block.name, args))]

    def _message_delta(self, data: dict[str, Any]) -> list[StreamChunk]:
        delta = data.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
            self.stop_reason = delta["stop_reason"]
        self._take_usage(data.get("usage"))
        self._check_truncated()
        return []

    def _message_stop(self) -> None:
        self._check_truncated()
        if any(b.kind == "tool_use" and not b.stopped for b in self.blocks.values()):
            raise self.malformed("a tool call that never finished")
        self.finished = True

    def _check_truncated(self) -> None:
        if self.truncated_call is not None and self.stop_reason != "max_tokens":
            raise self.malformed(f"the arguments of tool call {self.truncated_call} are not JSON")

    def _take_usage(self, raw: Any) -> None:
        # message_delta's counts are cumulative: present ones replace, absent ones stay.
        if not isinstance(raw, dict):
            return
        for key in (
            "input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):  # fmt: skip
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[key] = value
        details = raw.get("output_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
            self.usage["thinking_tokens"] = details["thinking_tokens"]


_MESSAGE_EVENTS = {
    "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
    "message_stop",
}  # fmt: skip
_DELTA_BLOCK = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "signature_delta": "thinking",
    "input_json_delta": "tool_use",
}
_DELTA_FIELD = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "signature_delta": "signature",
    "input_json_delta": "partial_json",
}


def stream_error(provider: str, data: dict[str, Any]) -> ProviderError:
    """The error class for an `error` event in the stream (the same shapes as HTTP errors)."""
    err = data.get("error")
    kind = str(err.get("type", "")) if isinstance(err, dict) else ""
    message = str(err.get("message", "")).strip()[:300] if isinstance(err, dict) else ""
    said = f" ({message})" if message else ""
    lowered = message.lower()
    if kind == "overloaded_error" or kind == "api_error":
        return OverloadedError(f"{provider} is overloaded or failing{said}")
    if kind == "rate_limit_error":
        return RateLimitError(f"{provider} is rate limiting requests{said}")
    if kind == "request_too_large" or (
        kind == "invalid_request_error" and any(p in lowered for p in http.OVERFLOW_PHRASES)
    ):
        return ContextOverflowError(f"the conversation is too long for the model{said}")
    if kind == "authentication_error":
        return AuthError(
            f"{provider} rejected the API key{said}. "
            f"Check the key, or run `koda auth login {provider}`."
        )
    if kind == "permission_error":
        return AuthError(f"{provider} refused access{said}. The key may lack access to this model.")
    if kind == "not_found_error":
        return ProviderError(f"{provider} has no such model{said}. Check --model.")
    return ProviderError(f"{provider} stopped the reply with an error: {kind or 'unknown'}{said}")
