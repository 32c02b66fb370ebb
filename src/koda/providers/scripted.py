"""The scripted provider: replays a JSON script of replies and records every request.

It stands in for a model in tests and in `koda demo`; docs/scripted-provider.md gives the format.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from koda.providers.base import (
    AuthError,
    ChatRequest,
    ContextOverflowError,
    DoneChunk,
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
)

ERRORS: dict[str, type[ProviderError]] = {
    "rate_limit": RateLimitError,
    "overloaded": OverloadedError,
    "network": NetworkError,
    "context_overflow": ContextOverflowError,
    "auth": AuthError,
    "server": ProviderError,
}
DEFAULT_WINDOW = 200_000
FLOOR_WINDOW = 4_096
_KEYS = {
    "text", "thinking", "tool_calls", "chunk_size", "delay_ms", "first_delay_ms", "usage",
    "stop_reason", "error", "message", "retry_after",
}  # fmt: skip
_USAGE_KEYS = {"prompt", "completion", "cache_read", "cache_write", "thinking"}


class ScriptError(ValueError):
    """The script is not valid; the message names the reply and the problem."""


@dataclass(frozen=True)
class ScriptedReply:
    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    chunk_size: int = 16
    delay_ms: float = 0
    first_delay_ms: float = 0
    usage: dict[str, int] | None = None
    stop_reason: str | None = None
    error: str | None = None
    message: str | None = None
    retry_after: float | None = None


def load_script(source: str) -> list[ScriptedReply]:
    """Parse a script given inline (JSON text) or as a path to a JSON file."""
    return _replies(_load(source))


def _load(source: str) -> Any:
    text = source if source.lstrip()[:1] in ("[", "{") else _read(source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(f"the script is not valid JSON: {exc}") from None


def _replies(data: Any) -> list[ScriptedReply]:
    if isinstance(data, dict):
        data = data.get("responses")
    if not isinstance(data, list):
        raise ScriptError(
            "a script is a JSON list of replies, or an object with a 'responses' list"
        )
    return [_reply(i, item) for i, item in enumerate(data, 1)]


def _window(data: Any) -> int:
    window = data.get("context_window", DEFAULT_WINDOW) if isinstance(data, dict) else None
    if window is None:
        return DEFAULT_WINDOW
    if not isinstance(window, int) or isinstance(window, bool) or window < FLOOR_WINDOW:
        raise ScriptError(f"context_window must be a whole number of at least {FLOOR_WINDOW}")
    return window


def _read(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read the script file {path}: {exc.strerror}") from None


def _reply(n: int, item: Any) -> ScriptedReply:
    if not isinstance(item, dict):
        raise ScriptError(f"reply {n} must be a JSON object")
    unknown = set(item) - _KEYS
    if unknown:
        raise ScriptError(f"reply {n} has unknown keys: {', '.join(sorted(unknown))}")
    if item.get("error") is not None and item["error"] not in ERRORS:
        raise ScriptError(f"reply {n}: error must be one of {', '.join(ERRORS)}")
    usage = item.get("usage")
    if usage is not None and (not isinstance(usage, dict) or set(usage) - _USAGE_KEYS):
        raise ScriptError(
            f"reply {n}: usage is an object with keys {', '.join(sorted(_USAGE_KEYS))}"
        )
    calls = item.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ScriptError(f"reply {n}: tool_calls must be a list")
    try:
        return ScriptedReply(
            text=str(item.get("text") or ""),
            thinking=str(item.get("thinking") or ""),
            tool_calls=[_call(n, j, c) for j, c in enumerate(calls, 1)],
            chunk_size=max(1, int(item.get("chunk_size", 16))),
            delay_ms=float(item.get("delay_ms", 0)),
            first_delay_ms=float(item.get("first_delay_ms", 0)),
            usage=None if usage is None else {k: int(v) for k, v in usage.items()},
            stop_reason=_opt_str(n, item, "stop_reason"),
            error=item.get("error"),
            message=_opt_str(n, item, "message"),
            retry_after=None if item.get("retry_after") is None else float(item["retry_after"]),
        )
    except (TypeError, ValueError) as exc:
        raise ScriptError(f"reply {n}: {exc}") from None


def _opt_str(n: int, item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise ScriptError(f"reply {n}: {key} must be a string")
    return value


def _call(n: int, j: int, raw: Any) -> ToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ScriptError(f"reply {n}, tool call {j}: needs a 'name' string")
    args = raw.get("args", raw.get("arguments", {}))
    # Arguments that are not an object are kept as given, so tests can play a confused model.
    call_id = str(raw.get("id") or f"call_{n}_{j}")
    return ToolCall(id=call_id, name=raw["name"], arguments=cast(dict[str, Any], args))


class ScriptedProvider:
    """Replays replies in order, one per request."""

    name = "scripted"
    default_model = "scripted"

    def __init__(
        self,
        replies: list[ScriptedReply],
        log_path: str | None = None,
        context_window: int = DEFAULT_WINDOW,
    ) -> None:
        self._replies = replies
        self._window = context_window
        self._next = 0
        self._log_path = log_path
        self.requests: list[ChatRequest] = []

    @classmethod
    def from_script(cls, source: str, log_path: str | None = None) -> ScriptedProvider:
        """From a script file or text; its object form may set the model's `context_window`."""
        data = _load(source)
        return cls(_replies(data), log_path=log_path, context_window=_window(data))

    async def list_models(self) -> list[str]:
        return ["scripted"]

    async def probe(self, model: str) -> None:
        return None

    def cost_usd(self, model: str, usage: TokenUsage) -> float | None:
        return None  # a stand-in has no price; "unknown" is more honest than a made-up zero

    async def aclose(self) -> None:
        return None

    def capabilities(self, model: str) -> ModelCapabilities:
        return ModelCapabilities(context_window=self._window, max_output_tokens=16_384)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        self._record(request)
        if self._next >= len(self._replies):
            raise ProviderError(
                f"the scripted provider has no reply left (its script had {len(self._replies)})"
            )
        reply = self._replies[self._next]
        self._next += 1
        async for chunk in self._play(reply, request):
            yield chunk

    async def _play(self, reply: ScriptedReply, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        if reply.first_delay_ms:
            await asyncio.sleep(reply.first_delay_ms / 1000)
        for piece in _pieces(reply.thinking, reply.chunk_size):
            yield ThinkingChunk(piece)
            await _pause(reply.delay_ms)
        for piece in _pieces(reply.text, reply.chunk_size):
            yield TextChunk(piece)
            await _pause(reply.delay_ms)
        if reply.error:
            error = ERRORS[reply.error](
                reply.message or f"scripted {reply.error} error", retry_after=reply.retry_after
            )
            raise error
        for call in reply.tool_calls:
            yield ToolCallChunk(call)
        stop = reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")
        yield DoneChunk(_usage(reply, request), stop)

    def _record(self, request: ChatRequest) -> None:
        self.requests.append(request)
        if self._log_path:
            with open(self._log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(request.to_json()) + "\n")


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


async def _pause(ms: float) -> None:
    if ms:
        await asyncio.sleep(ms / 1000)


def _usage(reply: ScriptedReply, request: ChatRequest) -> TokenUsage:
    if reply.usage is not None:
        return TokenUsage(**{k: int(v) for k, v in reply.usage.items()})
    # Without scripted figures, estimate like a tokenizer would (about 4 characters a token).
    size = len(request.system) + sum(len(m.content) + 20 for m in request.messages)
    size += sum(len(json.dumps(t.parameters)) + len(t.description) for t in request.tools)
    out = (
        len(reply.text)
        + len(reply.thinking)
        + sum(len(json.dumps(c.arguments)) for c in reply.tool_calls)
    )
    return TokenUsage(prompt=size // 4, completion=max(1, out // 4))
