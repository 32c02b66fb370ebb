"""The OpenAI Chat Completions wire format: OpenAI itself and every host that speaks it.

That is OpenRouter, Groq, xAI, DeepSeek, Mistral, Together, Fireworks, MiniMax, and the local
servers (LM Studio, Ollama, vLLM). One request: POST {base_url}/chat/completions with
`stream: true`; the answer comes back as `chat.completion.chunk` server-sent events ending in
`data: [DONE]`. Tool calls arrive in pieces keyed by their index and are handed on only when
complete and valid. Hosts that stream reasoning give it as `delta.reasoning_content` (DeepSeek,
vLLM) or `delta.reasoning` (OpenRouter, Ollama); open-weights models that write it inline as
`<think>…</think>` are sorted out by `ThinkTagFilter`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from koda.providers import models
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
)
from koda.providers.hosts import Host
from koda.providers.http import (
    OVERFLOW_PHRASES,
    error_for_status,
    get_json,
    open_stream,
)
from koda.providers.sse import SseEvent, iter_sse
from koda.providers.think_filter import ThinkTagFilter

MAX_ID = 40  # OpenAI rejects longer tool call ids
# Keys under which hosts' model lists give a context window: OpenRouter and Together
# (context_length), Groq (context_window), vLLM (max_model_len), Mistral and LM Studio.
WINDOW_KEYS = ("loaded_context_length", "context_length", "context_window", "max_model_len",
               "max_context_length")  # fmt: skip
# Hosts whose model list never gives a window: asking would only cost a round trip. (A custom
# base URL for one of them may be a gateway or a vLLM server that does tell, so it is asked.)
SILENT_HOSTS = ("openai", "xai", "deepseek", "minimax")
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class OpenAICompatProvider(HttpAdapter):
    def __init__(self, host: Host, *, api_key: str | None, base_url: str) -> None:
        super().__init__(host, api_key=api_key, base_url=base_url)
        # OpenAI's own models never write reasoning tags; elsewhere (open-weights models, local
        # servers, a custom OPENAI_BASE_URL) the tags and template tokens are sorted out.
        self._filter_tags = not (host.name == "openai" and self.base_url == host.base_url)

    # -- LlmProvider -----------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        body = self.build_body(request)
        parser = StreamParser(self.name, filter_tags=self._filter_tags)
        async with open_stream(
            self.http(),
            f"{self.base_url}/chat/completions",
            provider=self.name,
            headers=self._headers(),
            body=body,
        ) as response:
            lines = response.aiter_lines()
            first = await _first_line(lines)
            if first.startswith("{"):
                # A server (or proxy) that ignored `stream: true` answers with one object.
                rest = [line async for line in lines]
                for chunk in parser.feed_completion("\n".join([first, *rest]).encode()):
                    yield chunk
            else:
                async for event in iter_sse(_prepend(first, lines)):
                    for chunk in parser.feed(event):
                        yield chunk
                    if parser.done:
                        break
        for chunk in parser.finish():
            yield chunk

    async def list_models(self) -> list[str]:
        data = await get_json(
            self.http(), f"{self.base_url}/models", provider=self.name, headers=self._headers()
        )
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ProviderError(f"{self.name}: the model list was not in the expected shape")
        ids: list[str] = []
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                ids.append(entry["id"])
                self._learn(entry["id"], entry)
        return ids

    async def probe(self, model: str) -> None:
        if model in self.learned:
            return
        try:
            if self.host.name == "lmstudio":
                await self._probe_lmstudio(model)
            elif self.host.name == "ollama":
                return  # its /v1/models has no window; the table's figure stands
            elif not (self.host.name in SILENT_HOSTS and self.base_url == self.host.base_url):
                await self.list_models()
        except Exception:
            return  # the table's figure stands

    # -- the request -----------------------------------------------------------------------

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        reasoning_model = self.host.name == "openai" and _openai_reasoning(request.model)
        body: dict[str, Any] = {
            "model": request.model,
            "messages": self.wire_messages(request),
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        body["max_completion_tokens" if reasoning_model else "max_tokens"] = request.max_tokens
        # OpenAI's reasoning models refuse any temperature but the default.
        if request.temperature is not None and not reasoning_model:
            body["temperature"] = request.temperature
        if request.reasoning_effort:
            body["reasoning_effort"] = request.reasoning_effort
        return body

    def wire_messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        """Koda's history as Chat Completions messages. Thinking is not sent (there is no field
        for it); tool calls nobody answered and results whose call is missing are left out."""
        out: list[dict[str, Any]] = []
        if request.system:
            out.append({"role": "system", "content": request.system})
        history = request.messages
        pending: list[tuple[str, str]] = []  # (Koda's id, wire id) of calls awaiting a result
        # Tool messages carry text only: images a tool returned go in a user message right
        # after the results of their step (joined with the user's own message when one follows).
        images: list[dict[str, Any]] = []
        for i, m in enumerate(history):
            if m.role == "tool":
                wire_id = _take(pending, m.tool_call_id or "")
                if wire_id is not None:
                    out.append({"role": "tool", "tool_call_id": wire_id, "content": m.content})
                    images.extend(_result_images(m, wire_id))
                continue
            pending = []
            if m.role == "user":
                content = _user_content(m)
                if images:
                    own = [{"type": "text", "text": content}] if content else []
                    content = images + (own if isinstance(content, str) else content)
                    images = []
                out.append({"role": "user", "content": content})
                continue
            if images:
                out.append({"role": "user", "content": images})
                images = []
            answered = _answered(history, i)
            calls: list[dict[str, Any]] = []
            for k, c in enumerate(m.tool_calls):
                if c.id not in answered:
                    continue
                wire_id = self._wire_id(c.id, f"call_{i}_{k}")
                pending.append((c.id, wire_id))
                calls.append({
                    "id": wire_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                })  # fmt: skip
            if not (m.content or calls):
                continue
            message: dict[str, Any] = {"role": "assistant", "content": m.content or None}
            if calls:
                message["tool_calls"] = calls
            out.append(message)
        if images:
            out.append({"role": "user", "content": images})
        return out

    def _wire_id(self, call_id: str, fallback: str) -> str:
        """A tool call id the host accepts, the same for a call and its result."""
        if self.host.name == "mistral":  # Mistral wants exactly nine letters and digits
            if len(call_id) == 9 and call_id.isascii() and call_id.isalnum():
                return call_id
            digest = int.from_bytes(hashlib.sha256((call_id or fallback).encode()).digest())
            return "".join(_ALNUM[(digest >> (6 * n)) % 62] for n in range(9))
        clean = _ID_UNSAFE.sub("_", call_id) or fallback
        if len(clean) > MAX_ID:
            clean = clean[: MAX_ID - 9] + "_" + hashlib.sha256(call_id.encode()).hexdigest()[:8]
        return clean

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    # -- what the host says about its models ----------------------------------------------

    async def _probe_lmstudio(self, model: str) -> None:
        root = self.base_url.removesuffix("/v1")
        data = await get_json(
            self.http(), f"{root}/api/v0/models", provider=self.name, headers=self._headers()
        )
        for entry in data.get("data", []) if isinstance(data, dict) else []:
            if isinstance(entry, dict) and entry.get("id") == model:
                self._learn(model, entry)

    def _learn(self, model: str, entry: dict[str, Any]) -> None:
        window = next(
            (v for k in WINDOW_KEYS if isinstance(v := entry.get(k), int) and v > 0), None
        )
        if window is None:
            return
        top = entry.get("top_provider")
        output = top.get("max_completion_tokens") if isinstance(top, dict) else None
        if not (isinstance(output, int) and output > 0):
            output = min(models.table_capabilities(model).max_output_tokens, window)
        self.learned[model] = ModelCapabilities(context_window=window, max_output_tokens=output)


async def _first_line(lines: AsyncIterator[str]) -> str:
    """The first line that is not blank ("" when there is none)."""
    async for line in lines:
        if line.strip():
            return line.lstrip()
    return ""


async def _prepend(first: str, lines: AsyncIterator[str]) -> AsyncIterator[str]:
    if first:
        yield first
    async for line in lines:
        yield line


def _openai_reasoning(model: str) -> bool:
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(("o1", "o3", "o4", "gpt-5"))


def _user_content(m: Message) -> str | list[dict[str, Any]]:
    if not m.images:
        return m.content
    parts: list[dict[str, Any]] = []
    if m.content:
        parts.append({"type": "text", "text": m.content})
    return parts + _image_parts(m.images)


def _image_parts(images: list[ImageData]) -> list[dict[str, Any]]:
    return [
        {"type": "image_url", "image_url": {"url": f"data:{i.media_type};base64,{i.data}"}}
        for i in images
    ]


def _result_images(m: Message, wire_id: str) -> list[dict[str, Any]]:
    """The images of tool result `m` as user content parts, introduced by a line naming the
    call they came from."""
    if not m.images:
        return []
    intro = f"Images returned by the {m.tool_name or 'tool'} call {wire_id}:"
    return [{"type": "text", "text": intro}, *_image_parts(m.images)]


def _answered(history: list[Message], i: int) -> set[str]:
    """The call ids answered by the tool messages right after message `i`."""
    ids: set[str] = set()
    for m in history[i + 1 :]:
        if m.role != "tool":
            break
        ids.add(m.tool_call_id or "")
    return ids


def _take(pending: list[tuple[str, str]], call_id: str) -> str | None:
    for n, (koda_id, wire_id) in enumerate(pending):
        if koda_id == call_id:
            del pending[n]
            return wire_id
    return None


# -- the answer ----------------------------------------------------------------------------


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamParser:
    """Turns `chat.completion.chunk` events into StreamChunks; `finish` checks the ending."""

    def __init__(self, provider: str, *, filter_tags: bool = True) -> None:
        self.provider = provider
        self.done = False  # `data: [DONE]` arrived
        self.finish_reason: str | None = None
        self.usage = TokenUsage()
        self.calls: dict[int, _PartialCall] = {}
        self.tags = ThinkTagFilter() if filter_tags else None

    def feed(self, event: SseEvent) -> list[StreamChunk]:
        data = event.data
        if event.event == "error":
            raise stream_error(self.provider, _json_or_text(data))
        if not data.startswith("{"):
            stripped = data.strip()
            if stripped == "[DONE]":
                self.done = True
                return []
            if not stripped:
                return []
        try:
            obj = json.loads(data)
        except ValueError:
            raise self._malformed("an event that is not JSON") from None
        return self.feed_object(obj)

    def feed_object(self, obj: Any) -> list[StreamChunk]:
        if not isinstance(obj, dict):
            raise self._malformed("an event that is not a JSON object")
        if obj.get("error"):
            raise stream_error(self.provider, obj["error"])
        usage = obj.get("usage")
        if not isinstance(usage, dict):  # Groq used to give it only here
            extra = obj.get("x_groq")
            usage = extra.get("usage") if isinstance(extra, dict) else None
        if isinstance(usage, dict):
            self.usage = self._usage(usage)
        choices = obj.get("choices")
        if choices is None:
            return []
        if not isinstance(choices, list):
            raise self._malformed("`choices` that is not a list")
        out: list[StreamChunk] = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise self._malformed("a choice that is not an object")
            if choice.get("index", 0) != 0:
                continue  # only one answer is asked for
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            elif delta is not None:
                raise self._malformed("a `delta` that is not an object")
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
        return out

    def feed_completion(self, raw: bytes) -> list[StreamChunk]:
        """A whole `chat.completion` object, from a server that does not stream."""
        try:
            obj = json.loads(raw)
        except ValueError:
            raise self._malformed("an answer that is neither events nor JSON") from None
        if isinstance(obj, dict) and isinstance(obj.get("choices"), list):
            obj = dict(obj)
            obj["choices"] = [
                {"index": c.get("index", 0), "delta": c.get("message"),
                 "finish_reason": c.get("finish_reason")}
                for c in obj["choices"] if isinstance(c, dict)
            ]  # fmt: skip
        out = self.feed_object(obj)
        self.done = True
        return out

    def finish(self) -> list[StreamChunk]:
        """The end of a complete answer: held-back text, the tool calls, then DoneChunk."""
        if not self.done:
            raise NetworkError(
                f"{self.provider}: the connection closed before the reply finished "
                "(no [DONE]); the partial reply was discarded"
            )
        if self.finish_reason is None:
            raise NetworkError(
                f"{self.provider}: the reply ended without a finish reason; it was discarded"
            )
        out: list[StreamChunk] = list(self.tags.flush()) if self.tags else []
        truncated = self.finish_reason == "length"
        calls = self._complete_calls(truncated)
        out.extend(ToolCallChunk(c) for c in calls)
        if truncated:
            stop = "max_tokens"
        elif calls:
            stop = "tool_use"
        else:
            stop = "end_turn"  # also `content_filter` and hosts' own reasons
        out.append(DoneChunk(self.usage, stop))
        return out

    # -- pieces --------------------------------------------------------------------------

    def _delta(self, delta: dict[str, Any], out: list[StreamChunk]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out.append(ThinkingChunk(reasoning))
        content = delta.get("content")
        if isinstance(content, str):
            if content:
                out.extend(self.tags.feed(content) if self.tags else [TextChunk(content)])
        elif isinstance(content, list):  # Mistral's reasoning models: typed parts
            self._content_parts(content, out)
        calls = delta.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise self._malformed("`tool_calls` that is not a list")
            for call in calls:
                self._call_delta(call)

    def _content_parts(self, parts: list[Any], out: list[StreamChunk]) -> None:
        for part in parts:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                out.append(TextChunk(part["text"]))
            elif part.get("type") == "thinking":
                inner = part.get("thinking")
                pieces = inner if isinstance(inner, list) else [{"text": inner}]
                for piece in pieces:
                    text = piece.get("text") if isinstance(piece, dict) else None
                    if isinstance(text, str) and text:
                        out.append(ThinkingChunk(text))

    def _call_delta(self, call: Any) -> None:
        if not isinstance(call, dict):
            raise self._malformed("a tool call that is not an object")
        index = call.get("index")
        call_id = call.get("id")
        if not isinstance(index, int):
            # Some servers send whole calls without an index: a new id is a new call.
            known = {p.id for p in self.calls.values()}
            if not self.calls or (isinstance(call_id, str) and call_id and call_id not in known):
                index = max(self.calls, default=-1) + 1
            else:
                index = max(self.calls)
        part = self.calls.setdefault(index, _PartialCall())
        if isinstance(call_id, str) and call_id and not part.id:
            part.id = call_id
        function = call.get("function") or {}
        if not isinstance(function, dict):
            raise self._malformed("a tool call `function` that is not an object")
        name = function.get("name")
        if isinstance(name, str) and name and not part.name:
            part.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            part.arguments.append(arguments)
        elif isinstance(arguments, dict):
            part.arguments.append(json.dumps(arguments))

    def _complete_calls(self, truncated: bool) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for index in sorted(self.calls):
            part = self.calls[index]
            text = "".join(part.arguments).strip() or "{}"
            try:
                arguments = json.loads(text)
            except ValueError:
                arguments = None
            if not part.name or not isinstance(arguments, dict):
                if truncated:
                    continue  # cut off by the token limit: dropped, the stop reason says why
                what = "no name" if not part.name else "arguments that are not a JSON object"
                raise self._malformed(f"a tool call with {what}")
            call_id = part.id or f"call_{uuid.uuid4().hex[:24]}"
            calls.append(ToolCall(id=call_id, name=part.name, arguments=arguments))
        return calls

    def _usage(self, usage: dict[str, Any]) -> TokenUsage:
        try:
            prompt = int(usage.get("prompt_tokens") or 0)
            details = usage.get("prompt_tokens_details")
            cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
            cached = cached or int(usage.get("prompt_cache_hit_tokens") or 0)  # DeepSeek
            completion = int(usage.get("completion_tokens") or 0)
            details = usage.get("completion_tokens_details")
            thinking = int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0
        except (TypeError, ValueError):
            raise self._malformed("token counts that are not numbers") from None
        return TokenUsage(
            prompt=max(0, prompt - cached), completion=completion, cache_read=cached,
            thinking=thinking,
        )  # fmt: skip

    def _malformed(self, what: str) -> NetworkError:
        return NetworkError(
            f"{self.provider}: the reply stream carried {what}; the partial reply was discarded"
        )


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def stream_error(provider: str, error: Any) -> ProviderError:
    """An error reported inside a stream (`{"error": {...}}`), as the right error class."""
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    if not isinstance(error, dict):
        error = {"message": str(error)}
    message = str(error.get("message") or "").strip()[:300]
    code, kind = error.get("code"), str(error.get("type") or "")
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        return error_for_status(provider, int(code), json.dumps({"error": error}), {})
    said = f" ({message})" if message else ""
    key = f"{code} {kind} {message}".lower()
    if "rate_limit" in key or "rate limit" in key or "too many requests" in key:
        return RateLimitError(f"{provider} is rate limiting requests{said}")
    if "context_length_exceeded" in key or any(p in message.lower() for p in OVERFLOW_PHRASES):
        return ContextOverflowError(f"the conversation is too long for the model{said}")
    if any(w in key for w in ("overloaded", "server_error", "unavailable", "timeout")):
        return OverloadedError(f"{provider} is overloaded or failing{said}")
    if "invalid_api_key" in key or "authentication" in key:
        return AuthError(f"{provider} rejected the API key{said}")
    return ProviderError(f"{provider} reported an error during the reply{said}")
