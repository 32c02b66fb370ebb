"""Google Gemini over its REST API: `streamGenerateContent` with server-sent events.

Wire: POST {root}/v1beta/models/{model}:streamGenerateContent?alt=sse, the key in the
`x-goog-api-key` header (never in the URL, so it cannot reach a log or an error message). Each
`data:` event is a whole GenerateContentResponse; a reply is complete only when a candidate carried
a `finishReason` and the stream then ended cleanly.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
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
    ProviderError,
    StreamChunk,
    TextChunk,
    ThinkingChunk,
    TokenUsage,
    ToolCall,
    ToolCallChunk,
    ToolDefinition,
)
from koda.providers.hosts import Host
from koda.providers.sse import iter_sse

API_VERSION = "v1beta"
MAX_HOPS = 64  # continuation requests of one long reply
# The image formats Gemini reads; others (GIF, BMP) are refused with HTTP 400.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")

# Gemini's own status names, as the HTTP status they stand for (errors inside a 200 stream).
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "INTERNAL": 500, "UNKNOWN": 500,
    "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}  # fmt: skip
_OVERFLOW = ("exceeds the maximum number of tokens", "input token count", "token count")
_BAD_KEY = ("api key not valid", "api key expired", "api_key_invalid", "api key is invalid")
_REFUSALS = {
    "SAFETY": "stopped the reply for safety reasons",
    "RECITATION": "stopped the reply because it recited copyrighted material",
    "BLOCKLIST": "stopped the reply because it contained blocked terms",
    "PROHIBITED_CONTENT": "stopped the reply because it contained prohibited content",
    "SPII": "stopped the reply because it contained sensitive personal information",
    "MALFORMED_FUNCTION_CALL": "stopped because the model produced a malformed tool call",
    "LANGUAGE": "stopped the reply because of an unsupported language",
}


class GeminiProvider(HttpAdapter):
    """One Gemini endpoint (Google's, or a gateway at GOOGLE_GEMINI_BASE_URL)."""

    def __init__(self, host: Host, *, api_key: str | None, base_url: str) -> None:
        super().__init__(host, api_key=api_key, base_url=base_url)
        self._key = api_key or ""

    # -- the LlmProvider protocol ---------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        url = f"{self._model_url(request.model)}:streamGenerateContent?alt=sse"
        body = first = self.build_body(request)
        headers = {**self._headers(), "accept": "text/event-stream"}
        reader = _Reader(self.name)
        for _ in range(MAX_HOPS):
            async with self._open(url, headers, body) as response:
                async for chunk in reader.read(response):
                    yield chunk
            token = reader.continuation()
            if token is None:
                yield DoneChunk(reader.total_usage(), reader.stop_reason())
                return
            # Long decode: the reply stopped at the per-request output limit with a token to
            # continue it; the same request with that token streams the rest of the same reply.
            body = {**first, "continuationToken": token}
        raise ProviderError(f"{self.name} kept continuing the reply past {MAX_HOPS} requests")

    async def list_models(self) -> list[str]:
        names: list[str] = []
        token = ""
        for _ in range(50):  # pages of 1,000; a bound, so a looping gateway cannot hang us
            query = f"?pageSize=1000&pageToken={quote(token)}" if token else "?pageSize=1000"
            data = await self._get_json(f"{self.base_url}/{API_VERSION}/models{query}")
            entries = data.get("models") if isinstance(data, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    continue
                methods = entry.get("supportedGenerationMethods") or []
                if "generateContent" in methods:
                    names.append(entry["name"].removeprefix("models/"))
            token = str(data.get("nextPageToken") or "") if isinstance(data, dict) else ""
            if not token:
                break
        return names

    def capabilities(self, model: str) -> ModelCapabilities:
        return super().capabilities(_bare(model))

    async def probe(self, model: str) -> None:
        try:
            data = await self._get_json(self._model_url(model))
        except ProviderError:
            return
        if not isinstance(data, dict):
            return
        window, output = data.get("inputTokenLimit"), data.get("outputTokenLimit")
        if isinstance(window, int) and window > 0:
            table = models.table_capabilities(_bare(model))
            out = output if isinstance(output, int) and output > 0 else table.max_output_tokens
            self.learned[_bare(model)] = ModelCapabilities(window, out)

    def cost_usd(self, model: str, usage: TokenUsage) -> float | None:
        return super().cost_usd(_bare(model), usage)

    # -- the request ----------------------------------------------------------------------------

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body; the same history always gives the same bytes (prompt-cache friendly)."""
        body: dict[str, Any] = {"contents": to_contents(request.messages)}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        if request.tools:
            body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        config: dict[str, Any] = {"maxOutputTokens": self._max_output(request)}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.thinking_budget is not None:
            thinking: dict[str, Any] = {"thinkingBudget": request.thinking_budget}
            if request.thinking_budget != 0:  # 0 turns thinking off: there is nothing to include
                thinking["includeThoughts"] = True
            config["thinkingConfig"] = thinking
        body["generationConfig"] = config
        return body

    def _max_output(self, request: ChatRequest) -> int:
        # Only a limit the API itself reported caps the request; a table guess never shrinks it.
        learned = self.learned.get(_bare(request.model))
        if learned is not None:
            return max(1, min(request.max_tokens, learned.max_output_tokens))
        return request.max_tokens

    # -- HTTP -----------------------------------------------------------------------------------

    def _model_url(self, model: str) -> str:
        return f"{self.base_url}/{API_VERSION}/models/{_bare(model)}"

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._key} if self._key else {}

    @asynccontextmanager
    async def _open(
        self, url: str, headers: Mapping[str, str], body: dict[str, Any]
    ) -> AsyncIterator[httpx2.Response]:
        """Like http.open_stream, but an error body is read the Gemini way (status names,
        RetryInfo, an invalid key reported as HTTP 400)."""
        try:
            async with self.http().stream("POST", url, headers=dict(headers), json=body) as resp:
                if resp.status_code >= 400:
                    text = (await resp.aread()).decode("utf-8", errors="replace")
                    raise self._error(resp.status_code, text, resp.headers)
                yield resp
        except httpx2.TimeoutException as exc:
            raise NetworkError(
                f"{self.name}: the request timed out ({type(exc).__name__})"
            ) from None
        except httpx2.TransportError as exc:
            raise self._network(exc) from None

    async def _get_json(self, url: str) -> Any:
        try:
            response = await self.http().get(url, headers=self._headers())
        except httpx2.TransportError as exc:
            raise self._network(exc) from None
        if response.status_code >= 400:
            raise self._error(response.status_code, response.text, response.headers)
        try:
            return response.json()
        except ValueError:
            raise ProviderError(f"{self.name}: the server's answer was not JSON") from None

    def _error(self, status: int, body: str, headers: Mapping[str, str]) -> ProviderError:
        error = gemini_error(self.name, status, body, headers)
        if self._key and self._key in error.message:
            error = type(error)(self._redact(error.message), retry_after=error.retry_after)
        return error

    def _network(self, exc: Exception) -> NetworkError:
        return NetworkError(
            self._redact(f"{self.name}: network error: {exc or type(exc).__name__}")
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[key]") if self._key else text


# -- errors ------------------------------------------------------------------------------------


def gemini_error(
    provider: str, status: int, body: str, headers: Mapping[str, str]
) -> ProviderError:
    """The error class and sentence for a Gemini error body (`{"error": {code, message,
    status, details}}`), whether it came with an HTTP status or inside the stream."""
    err = _error_object(body)
    name = str(err.get("status") or "")
    detail = http.error_detail(body)
    lowered = f"{detail} {_reasons(err)}".lower()
    said = f" ({detail})" if detail else ""
    effective = status
    if status < 400:  # an error event inside a stream that began with 200
        code = err.get("code")
        effective = _STATUS_CODES.get(name) or (code if isinstance(code, int) else 500)
    if name == "RESOURCE_EXHAUSTED":
        effective = 429
    elif name == "UNAVAILABLE":
        effective = 503
    if any(p in lowered for p in _BAD_KEY) or effective == 401:
        return AuthError(
            f"{provider} rejected the API key{said}. "
            f"Check the key, or run `koda auth login {provider}`."
        )
    if effective == 400 and any(p in lowered for p in _OVERFLOW):
        return ContextOverflowError(f"the conversation is too long for the model{said}")
    error = http.error_for_status(provider, effective, body, headers)
    if error.retry_after is None and error.retryable:
        error.retry_after = _retry_delay(err)
    return error


def _error_object(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


def _reasons(err: dict[str, Any]) -> str:
    details = err.get("details")
    if not isinstance(details, list):
        return ""
    return " ".join(str(d.get("reason", "")) for d in details if isinstance(d, dict))


def _retry_delay(err: dict[str, Any]) -> float | None:
    """google.rpc.RetryInfo's `retryDelay` ("2s", "0.5s"), which Gemini sends instead of a
    Retry-After header."""
    for detail in err.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            try:
                return max(0.0, float(str(detail.get("retryDelay", "")).removesuffix("s")))
            except ValueError:
                return None
    return None


# -- the stream --------------------------------------------------------------------------------


class _Reader:
    """Turns the events of one reply into chunks, checking the structure as it goes. A reply is
    one request, or several when the API asks for a continuation (`finishReason: CONTINUATION`
    with a `continuationToken`); the reader keeps the state that spans them."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls = 0
        self.visible = False  # text or a tool call was yielded
        self.tag = secrets.token_hex(4)
        self.totals: dict[str, int] = {}  # usage of the finished requests, summed
        self._start_hop()

    def _start_hop(self) -> None:
        self.finish: str | None = None
        self.token: str | None = None
        self.usage: dict[str, Any] = {}  # each event's usage is the request's running total
        self.raw: list[str] = []

    async def read(self, response: httpx2.Response) -> AsyncIterator[StreamChunk]:
        """The chunks of one request; raises unless it ended cleanly after a finish reason."""
        self._start_hop()
        async for event in iter_sse(self._lines(response)):
            if not event.data:
                continue
            try:
                data = json.loads(event.data)
            except ValueError:
                raise self._broken("a malformed event (not JSON)") from None
            if not isinstance(data, dict):
                raise self._broken("an event that is not a JSON object")
            for chunk in self._event(data):
                yield chunk
        if self.raw:  # an error body written as plain JSON lines instead of an SSE event
            if _error_object("".join(self.raw)):
                raise gemini_error(self.provider, 200, "".join(self.raw), {})
            raise self._broken("text that is not a server-sent event")
        if self.finish is None:
            raise NetworkError(
                f"{self.provider}: the reply stopped before it finished (the stream ended early)"
            )
        for key, value in self.usage.items():
            if isinstance(value, int):
                self.totals[key] = self.totals.get(key, 0) + value

    def continuation(self) -> str | None:
        """The token to continue the reply with, when the request ended asking for one."""
        return self.token if self.finish == "CONTINUATION" else None

    async def _lines(self, response: httpx2.Response) -> AsyncIterator[str]:
        async for line in response.aiter_lines():
            if self.raw or line.lstrip().startswith(("{", "[")):
                self.raw.append(line)
                continue
            yield line

    def _event(self, data: dict[str, Any]) -> list[StreamChunk]:
        if "error" in data:
            raise gemini_error(self.provider, 200, json.dumps(data), {})
        usage = data.get("usageMetadata")
        if isinstance(usage, dict):
            self.usage = usage
        candidates = data.get("candidates")
        if candidates is None:
            blocked = (data.get("promptFeedback") or {}).get("blockReason")
            if blocked:
                raise ProviderError(f"{self.provider} refused the prompt ({blocked})")
            return []
        if not isinstance(candidates, list):
            raise self._broken("an event whose candidates are not a list")
        if not candidates:
            return []
        candidate = candidates[0]
        if not isinstance(candidate, dict):
            raise self._broken("an event whose candidate is not an object")
        chunks = self._parts(candidate.get("content") or {})
        token = candidate.get("continuationToken")
        if isinstance(token, str) and token:
            self.token = token  # a checkpoint; kept only to continue after CONTINUATION
        finish = candidate.get("finishReason")
        if finish:
            self._check_finish(str(finish))
        return chunks

    def _parts(self, content: Any) -> list[StreamChunk]:
        parts = content.get("parts") if isinstance(content, dict) else None
        if parts is None:
            return []
        if not isinstance(parts, list):
            raise self._broken("an event whose parts are not a list")
        chunks: list[StreamChunk] = []
        for part in parts:
            if not isinstance(part, dict):
                raise self._broken("a part that is not an object")
            signature = part.get("thoughtSignature")
            signature = signature if isinstance(signature, str) and signature else None
            if "functionCall" in part:
                chunks.append(ToolCallChunk(self._call(part["functionCall"], signature)))
                self.visible = True
            elif "text" in part:
                text = part["text"]
                if not isinstance(text, str):
                    raise self._broken("a text part whose text is not a string")
                if part.get("thought"):
                    if text or signature:
                        chunks.append(ThinkingChunk(text, signature))
                    continue
                if signature:
                    # The signature of the model's thinking, carried on an answer part; an empty
                    # thinking chunk hands it to the engine without showing any thinking.
                    chunks.append(ThinkingChunk("", signature))
                if text:
                    chunks.append(TextChunk(text))
                    self.visible = True
        return chunks

    def _call(self, raw: Any, signature: str | None) -> ToolCall:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise self._broken("a function call without a name")
        args = raw.get("args")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise self._broken("a function call whose arguments are not an object")
        self.calls += 1
        name = raw["name"]
        # Gemini's calls carry no id Koda can rely on; ours are unique within the session (the
        # random tag) so a history later sent to another provider has no duplicate ids.
        call_id = f"call_{self.tag}_{self.calls}_{name}"
        return ToolCall(call_id, name, args, signature)

    def _check_finish(self, finish: str) -> None:
        if finish in ("STOP", "MAX_TOKENS", "CONTINUATION", "FINISH_REASON_UNSPECIFIED"):
            self.finish = finish
            return
        why = _REFUSALS.get(finish, f"stopped the reply ({finish})")
        raise ProviderError(f"{self.provider} {why}")

    def stop_reason(self) -> str:
        if self.finish in ("MAX_TOKENS", "CONTINUATION"):  # CONTINUATION here: no token given
            return "max_tokens"
        return "tool_use" if self.calls else "end_turn"

    def total_usage(self) -> TokenUsage:
        u = self.totals
        prompt, cached = _count(u, "promptTokenCount"), _count(u, "cachedContentTokenCount")
        thoughts = _count(u, "thoughtsTokenCount")
        return TokenUsage(
            prompt=max(0, prompt - cached),
            completion=_count(u, "candidatesTokenCount") + thoughts,
            cache_read=cached,
            thinking=thoughts,
        )

    def _broken(self, what: str) -> NetworkError:
        return NetworkError(f"{self.provider}: the stream carried {what}; the reply was discarded")


def _count(usage: dict[str, int], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) else 0


# -- history -----------------------------------------------------------------------------------


def to_contents(messages: list[Message]) -> list[dict[str, Any]]:
    """Koda's neutral history as Gemini `contents`: roles "user" and "model", tool results as
    functionResponse parts of a user turn, consecutive same-role turns merged."""
    contents: list[dict[str, Any]] = []
    open_calls: dict[str, ToolCall] = {}
    answered: set[str] = set()
    # Images a tool returned, as inlineData parts after the step's functionResponse parts (in
    # the same user turn: a function response turn may carry other parts after the responses).
    images: list[dict[str, Any]] = []

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    def close_calls() -> None:
        # Gemini wants one response for each call of a model turn; a call left without a
        # result (which build_history normally repairs) gets a note rather than a 400.
        missing = [c for i, c in open_calls.items() if i not in answered]
        add(
            "user",
            [_response(c.name, "[no result: the tool call did not finish]") for c in missing],
        )
        add("user", images[:])
        images.clear()
        open_calls.clear()
        answered.clear()

    for m in messages:
        if m.role == "tool":
            call = open_calls.get(m.tool_call_id or "")
            if call is None or call.id in answered:
                continue  # its call is not in the history: never sent
            answered.add(call.id)
            add("user", [_response(m.tool_name or call.name, m.content)])
            if m.images:
                images.append({"text": f"Images returned by {_call_label(call)}:"})
                images.extend(_image(i) for i in m.images)
            continue
        close_calls()
        if m.role == "assistant":
            add("model", _model_parts(m))
            open_calls = {c.id: c for c in m.tool_calls}
        else:
            parts: list[dict[str, Any]] = [_image(i) for i in m.images]
            if m.content:
                parts.append({"text": m.content})
            add("user", parts)
    close_calls()
    return contents


def _call_label(call: ToolCall) -> str:
    """The call as the model wrote it (Gemini's calls have no id to name it by)."""
    args = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
    return f"{call.name} {args[:200]}{'…' if len(args) > 200 else ''}"


def _image(image: ImageData) -> dict[str, Any]:
    """An image as inlineData, or a note in its place when Gemini cannot read its format (a GIF
    attached while on another provider): one such image would make every request fail."""
    if image.media_type in IMAGE_TYPES:
        return {"inlineData": {"mimeType": image.media_type, "data": image.data}}
    return {"text": f"[an {image.media_type} image was attached here; Gemini cannot read it]"}


def _model_parts(m: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if m.content:
        text: dict[str, Any] = {"text": m.content}
        if m.thinking_signature:
            text["thoughtSignature"] = m.thinking_signature
        parts.append(text)
    for call in m.tool_calls:
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments}}
        if call.signature:
            part["thoughtSignature"] = call.signature
        parts.append(part)
    return parts


def _response(name: str, output: str) -> dict[str, Any]:
    # The API reference: "Use 'output' key to specify function output".
    return {"functionResponse": {"name": name, "response": {"output": output}}}


def _declaration(tool: ToolDefinition) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
    if tool.parameters:
        # `parametersJsonSchema` takes standard JSON Schema, unlike the older `parameters`
        # (an OpenAPI subset that rejects keywords such as additionalProperties). The API
        # reference's own example for this field uses "additionalProperties": false, so the
        # schema is sent unchanged.
        declaration["parametersJsonSchema"] = tool.parameters
    return declaration


def _bare(model: str) -> str:
    return model.removeprefix("models/")
