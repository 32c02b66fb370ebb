"""A fake Gemini API: a real HTTP server on 127.0.0.1 that streams scripted replies.

It speaks the REST API as Google serves it:
- POST /v1beta/models/{model}:streamGenerateContent?alt=sse answers `content-type:
  text/event-stream`, chunked, one `data: <GenerateContentResponse JSON>` event per chunk
  (CRLF line ends). Thought text comes as parts with `"thought": true`, function calls as whole
  `functionCall` parts, `thoughtSignature` beside the part it signs, `usageMetadata` on every
  chunk (complete on the last), and `finishReason` on the last chunk's candidate.
- GET /v1beta/models (pageSize / pageToken) and GET /v1beta/models/{model}.
- Errors as `{"error": {"code", "message", "status", "details"}}` (pretty-printed, as Google
  does), RetryInfo's `retryDelay` for 429s; an invalid key is a 400 with reason API_KEY_INVALID.
The key is read from the `x-goog-api-key` header (or a `key` query parameter).

Every request is recorded (method, path, query, headers, raw bytes, parsed JSON) for assertions.

Each streamGenerateContent request is first checked as the API checks it (`validate_request`:
roles, empty parts, inline data, function call / response turns and counts, Gemini 3 thought
signatures); a request the API would refuse gets its 400 INVALID_ARGUMENT, is added to
`rejected`, and uses up no scripted reply. With `strict_signatures`, every thoughtSignature must
be one this server sent.

Use:
    with GeminiFake() as fake:
        fake.push(Reply(text="hello"), rate_limited(), Reply(tool_calls=[Call("Read", {...})]))
        ... point a client at fake.url ...
        fake.posts[0].json["contents"]
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# Base64 of opaque bytes, as Gemini's signatures are (the SDK decodes them).
SIGNATURE = "CiQBVHRob3VnaHQtc2lnbmF0dXJlLW9mLXRoZS1mYWtlLW1vZGVsAP8="


@dataclass(frozen=True)
class Call:
    """A function call the fake model makes (Gemini streams each call whole, in one part)."""

    name: str
    args: dict[str, Any] | None = field(default_factory=dict)  # None: the key is left out
    signature: str | None = None  # the part's thoughtSignature


@dataclass
class Reply:
    """One scripted answer to streamGenerateContent, with optional faults."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[Call] = field(default_factory=list)
    # Where a thoughtSignature rides: on the first answer text part ("first_text"), on an extra
    # empty text part in the last chunk ("last"), or on the last thought part ("thought").
    signature: str | None = None
    signature_on: str = "first_text"
    prompt_tokens: int = 20
    candidates_tokens: int = 10
    cached_tokens: int | None = None  # cachedContentTokenCount (left out when None)
    thoughts_tokens: int | None = None  # thoughtsTokenCount (left out when None)
    finish_reason: str = "STOP"
    continuation_token: str | None = None  # on the last chunk's candidate (long decode)
    calls_apart: bool = False  # function calls in a chunk of their own, before the last one
    events_override: list[dict[str, Any]] | None = None  # send exactly these chunks instead
    chunk_size: int = 8
    model_version: str = "gemini-2.5-flash"
    # Faults
    status: int = 200
    error: dict[str, Any] | None = None  # the error body (status >= 400), or an in-stream event
    error_after: int | None = None  # with status 200: events sent before the error event
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # close the socket after N events (no chunked terminator)
    end_after: int | None = None  # end the stream cleanly after N events (no finishReason)
    malformed_at: int | None = None  # event N is sent as broken JSON
    first_delay: float = 0.0  # seconds before the first event
    delay: float = 0.0  # seconds between events
    raw_error_lines: bool = False  # in-stream error as bare JSON lines, not a data: event

    def events(self) -> list[dict[str, Any]]:
        """The GenerateContentResponse chunks of this reply, in order."""
        if self.events_override is not None:
            return self.events_override
        response_id = uuid.uuid4().hex[:20]
        thought_parts: list[dict[str, Any]] = [
            {"text": p, "thought": True} for p in _pieces(self.thinking, self.chunk_size)
        ]
        text_parts: list[dict[str, Any]] = [
            {"text": p} for p in _pieces(self.text, self.chunk_size)
        ]
        if self.signature and self.signature_on == "thought" and thought_parts:
            thought_parts[-1]["thoughtSignature"] = self.signature
        if self.signature and self.signature_on == "first_text" and text_parts:
            text_parts[0]["thoughtSignature"] = self.signature
        final_parts: list[dict[str, Any]] = []
        if text_parts and not self.tool_calls:
            final_parts.append(text_parts.pop())  # the last piece comes with the finish reason
        call_parts: list[dict[str, Any]] = []
        for call in self.tool_calls:
            call_json: dict[str, Any] = {"name": call.name}
            if call.args is not None:
                call_json["args"] = call.args
            part: dict[str, Any] = {"functionCall": call_json}
            if call.signature:
                part["thoughtSignature"] = call.signature
            call_parts.append(part)
        if not self.calls_apart:
            final_parts[:0] = call_parts
            call_parts = []
        if self.signature and self.signature_on == "last":
            final_parts.append({"text": "", "thoughtSignature": self.signature})
        if not final_parts:
            final_parts.append({"text": ""})

        chunks = []
        for part in thought_parts + text_parts:
            chunks.append(self._chunk([part], None, self._partial_usage(), response_id))
        if call_parts:
            chunks.append(self._chunk(call_parts, None, self._partial_usage(), response_id))
        chunks.append(self._chunk(final_parts, self.finish_reason, self._usage(), response_id))
        return chunks

    def _chunk(
        self,
        parts: list[dict[str, Any]],
        finish: str | None,
        usage: dict[str, Any],
        response_id: str,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
            if self.continuation_token:
                candidate["continuationToken"] = self.continuation_token
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.model_version,
            "responseId": response_id,
        }

    def _partial_usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": self.prompt_tokens}
        if self.cached_tokens is not None:
            usage["cachedContentTokenCount"] = self.cached_tokens
        usage["totalTokenCount"] = self.prompt_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        return usage

    def _usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": self.candidates_tokens,
        }
        total = self.prompt_tokens + self.candidates_tokens + (self.thoughts_tokens or 0)
        usage["totalTokenCount"] = total
        if self.cached_tokens is not None:
            usage["cachedContentTokenCount"] = self.cached_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]
        if self.cached_tokens is not None:
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.cached_tokens}]
        if self.thoughts_tokens is not None:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        return usage


def _signatures_in(events: list[dict[str, Any]]) -> set[str]:
    return {
        str(part["thoughtSignature"])
        for event in events
        for candidate in event.get("candidates") or []
        for part in (candidate.get("content") or {}).get("parts") or []
        if part.get("thoughtSignature")
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


# -- faults, worded as Google words them ------------------------------------------------------


def error_body(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def error_reply(
    code: int,
    status: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    return Reply(
        status=code, error=error_body(code, status, message, details), headers=headers or {}
    )


def rate_limited(retry_delay: str | None = "0.05s", headers: dict[str, str] | None = None) -> Reply:
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "10",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    return error_reply(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
        details,
        headers,
    )


def unavailable() -> Reply:
    return error_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def context_overflow(tokens: int = 1_200_000, limit: int = 1_048_576) -> Reply:
    return error_reply(
        400,
        "INVALID_ARGUMENT",
        f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit}).",
    )


def invalid_key() -> Reply:
    return Reply(status=400, error=_invalid_key_body())


def _invalid_key_body() -> dict[str, Any]:
    return error_body(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def permission_denied() -> Reply:
    return error_reply(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )


def not_found(model: str = "gemini-9-ultra") -> Reply:
    return error_reply(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    )


def stream_error(reply: Reply, code: int, status: str, message: str, after: int = 1) -> Reply:
    """`reply`'s first `after` events, then an error event inside the 200 stream."""
    reply.error = error_body(code, status, message)
    reply.error_after = after
    return reply


# -- models ------------------------------------------------------------------------------------


def model_entry(
    name: str,
    input_limit: int = 1_048_576,
    output_limit: int = 65_536,
    methods: tuple[str, ...] = ("generateContent", "countTokens", "createCachedContent"),
) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name.replace("-", " ").title(),
        "description": f"The {name} model.",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": list(methods),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


DEFAULT_MODELS = [
    model_entry("gemini-2.5-flash"),
    model_entry("gemini-2.5-pro"),
    model_entry("gemini-embedding-001", 2048, 1, ("embedContent", "countTextTokens")),
    model_entry("gemini-2.0-flash", 1_048_576, 8_192),
]


# -- request validation, as the API does it ----------------------------------------------------

_DATA_FIELDS = ("text", "inlineData", "fileData", "functionCall", "functionResponse",
                "executableCode", "codeExecutionResult")  # fmt: skip
_FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")
# The image formats Gemini reads (no GIF, no BMP), with the bytes each one starts with.
_IMAGE_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",), "image/heic": (b"",), "image/heif": (b"",),
}  # fmt: skip
SIGNATURE_DOCS = "https://ai.google.dev/gemini-api/docs/thought-signatures"


class Invalid(Exception):
    """A request the API refuses with 400 INVALID_ARGUMENT; the text is the API's own."""


def validate_request(
    body: Any, model: str = "", *, signatures: set[str] | None = None, sniff_images: bool = False
) -> str | None:
    """The message of the 400 INVALID_ARGUMENT the API answers `body` with, or None.

    Checks what generateContent enforces on `contents`: roles only "user" and "model", no
    content without parts and no part without data (an empty text part counts as none), inline
    data that is base64, function calls and responses with names, a function call turn right
    after a user or function response turn, a function response turn right after the function
    call turn with one response per call (names matching), and function declaration names. For
    Gemini 3 models, the first function call of each step of the current turn must carry its
    thoughtSignature. With `signatures`, every thoughtSignature must be one this server issued
    (the API verifies its own signatures); with `sniff_images`, inline images must decode to
    their declared format.
    """
    try:
        _check_request(_camel(body), model, signatures, sniff_images)
    except Invalid as exc:
        return str(exc)
    return None


def _camel(node: Any) -> Any:
    """Field names as camelCase: the API reads proto JSON, which accepts snake_case too (the
    google-genai SDK sends `inline_data`, `function_call`, …)."""
    if isinstance(node, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v)
                for k, v in node.items()}  # fmt: skip
    if isinstance(node, list):
        return [_camel(v) for v in node]
    return node


def _check_request(body: Any, model: str, signatures: set[str] | None, sniff_images: bool) -> None:
    if not isinstance(body, dict):
        raise Invalid("Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified\n")
    system = body.get("systemInstruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not isinstance(parts, list) or not parts:
            raise Invalid(
                "* GenerateContentRequest.system_instruction.parts: contents.parts must not be "
                "empty.\n"
            )
    _check_tools(body.get("tools"))
    for i, content in enumerate(contents):
        _check_content(i, content, signatures, sniff_images)
    _check_turns(contents)
    if model.removeprefix("models/").startswith("gemini-3"):
        _check_current_turn_signatures(contents)


def _check_tools(tools: Any) -> None:
    for t, tool in enumerate(tools if isinstance(tools, list) else []):
        declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        for k, declaration in enumerate(declarations or []):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
                raise Invalid(
                    f"* GenerateContentRequest.tools[{t}].function_declarations[{k}].name: "
                    "Invalid function name. Must start with a letter or an underscore. Must be "
                    "alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes "
                    "(-), with a maximum length of 64.\n"
                )


def _check_content(i: int, content: Any, signatures: set[str] | None, sniff_images: bool) -> None:
    if not isinstance(content, dict):
        raise Invalid(f"Invalid value at 'contents[{i}]' (type.googleapis.com/google.ai."
                      "generativelanguage.v1beta.Content)")  # fmt: skip
    role = content.get("role", "user")
    if role not in ("user", "model"):
        raise Invalid("Please use a valid role: user, model.")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise Invalid(
            f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
        )
    for j, part in enumerate(parts):
        where = f"contents[{i}].parts[{j}]"
        if not isinstance(part, dict):
            raise Invalid(f"Invalid value at '{where}' (type.googleapis.com/google.ai."
                          "generativelanguage.v1beta.Part)")  # fmt: skip
        fields = [f for f in _DATA_FIELDS if f in part]
        if len(fields) > 1:
            raise Invalid(
                f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set "
                f"'{fields[1]}'"
            )
        empty_text = fields == ["text"] and part["text"] == "" and "thoughtSignature" not in part
        if not fields or empty_text:
            raise Invalid(
                f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have "
                "one initialized field\n"
            )
        signature = part.get("thoughtSignature")
        if signature is not None:
            _check_signature(where, signature, signatures)
        kind = fields[0]
        if kind == "text" and not isinstance(part["text"], str):
            raise Invalid(f"Invalid value at '{where}.text' (TYPE_STRING)")
        elif kind == "inlineData":
            _check_inline_data(where, part["inlineData"], sniff_images)
        elif kind == "functionCall":
            _check_function_part(where, "function_call", part["functionCall"], "args")
        elif kind == "functionResponse":
            _check_function_part(where, "function_response", part["functionResponse"], "response")


def _check_signature(where: str, signature: Any, signatures: set[str] | None) -> None:
    try:
        base64.b64decode(str(signature), validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(
            f"Invalid value at '{where}.thought_signature' (TYPE_BYTES), Base64 decoding failed "
            f'for "{str(signature)[:40]}"'
        ) from None
    if signatures is not None and signature not in signatures:
        raise Invalid("Corrupted thought signature.")


def _check_inline_data(where: str, blob: Any, sniff_images: bool) -> None:
    if not isinstance(blob, dict) or not isinstance(blob.get("mimeType"), str):
        raise Invalid(f"* GenerateContentRequest.{where}.inline_data.mime_type: Field required\n")
    data = blob.get("data")
    mime = blob["mimeType"]
    try:
        raw = base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not isinstance(data, str) or not raw:
        raise Invalid(
            f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed "
            f'for "{str(data)[:40]}"'
        )
    if mime.startswith("image/"):
        magic = _IMAGE_MAGIC.get(mime)
        if magic is None:
            raise Invalid(f"Unsupported MIME type: {mime}")
        if sniff_images and not raw.startswith(magic):
            raise Invalid(
                "Unable to process input image. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting"
            )


def _check_function_part(where: str, field: str, value: Any, payload: str) -> None:
    if not isinstance(value, dict):
        raise Invalid(f"Invalid value at '{where}.{field}'")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid(f"* GenerateContentRequest.{where}.{field}.name: Name cannot be empty.\n")
    inner = value.get(payload)
    if inner is not None and not isinstance(inner, dict):
        raise Invalid(
            f"Invalid value at '{where}.{field}.{payload}' (type.googleapis.com/"
            "google.protobuf.Struct)"
        )


def _calls(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["functionCall"] for p in content["parts"] if "functionCall" in p]


def _responses(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["functionResponse"] for p in content["parts"] if "functionResponse" in p]


def _check_turns(contents: list[dict[str, Any]]) -> None:
    previous: dict[str, Any] | None = None
    for content in contents:
        role = content.get("role", "user")
        calls, responses = _calls(content), _responses(content)
        if calls and (role != "model" or previous is None or previous.get("role") == "model"):
            raise Invalid(
                "Please ensure that function call turn comes immediately after a user turn or "
                "after a function response turn."
            )
        if responses and (role != "user" or previous is None or not _calls(previous)):
            raise Invalid(
                "Please ensure that function response turn comes immediately after a function "
                "call turn."
            )
        if previous is not None and _calls(previous):
            expected = _calls(previous)
            if len(responses) != len(expected):
                raise _count_mismatch()
            if sorted(r["name"] for r in responses) != sorted(c["name"] for c in expected):
                raise Invalid(
                    "Please ensure that the name of each function response part matches the name "
                    "of a function call part of the function call turn."
                )
        previous = content
    if previous is not None and _calls(previous):
        raise _count_mismatch()


def _count_mismatch() -> Invalid:
    return Invalid(
        "Please ensure that the number of function response parts is equal to the number of "
        "function call parts of the function call turn."
    )


def _check_current_turn_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3: in the current turn (since the last user content that is more than function
    responses), the first function call part of every step carries a thoughtSignature."""
    start = 0
    for i, content in enumerate(contents):
        if content.get("role", "user") == "user" and any(
            "functionResponse" not in p for p in content["parts"]
        ):
            start = i
    for content in contents[start:]:
        for j, part in enumerate(content["parts"]):
            if "functionCall" not in part:
                continue
            if "thoughtSignature" not in part:
                raise Invalid(
                    "Function call is missing a thought_signature in functionCall parts. This is "
                    "required for tools to work correctly, and missing thought_signature may lead "
                    "to degraded model performance. Additional data, function call "
                    f"`default_api:{part['functionCall']['name']}` , position {j + 1}. Please "
                    f"refer to {SIGNATURE_DOCS} for more details."
                )
            break  # only the first call of a step is signed


# -- the server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    json: Any


class GeminiFake:
    def __init__(self, api_key: str | None = None, models: list[dict[str, Any]] | None = None):
        self.api_key = api_key  # None: any key (or none) is accepted
        self.models = list(DEFAULT_MODELS if models is None else models)
        self.page_size = 1000
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        # Requests are checked as the API checks them; refused ones get its 400 and are kept here.
        self.validate = True
        self.rejected: list[tuple[Recorded, str]] = []
        self.sniff_images = True  # also check that inline images decode to their format
        # Thought signatures this server sent; with strict_signatures, every thoughtSignature in
        # a request must be one of them (the API verifies its own, so another's fail).
        self.strict_signatures = False
        self.issued_signatures: set[str] = set()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def posts(self) -> list[Recorded]:
        """The streamGenerateContent requests only (not model listings or probes)."""
        return [r for r in self.requests if r.method == "POST"]

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _next(self) -> Reply | None:
        with self._lock:
            return self.replies.popleft() if self.replies else None

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def __enter__(self) -> GeminiFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a timeout test, a cancelled stream) is not the fake's failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(fake: GeminiFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        # -- routing ---------------------------------------------------------------------------

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            self._record(parts.path, query, b"")
            if not self._authorised(query):
                return
            path = unquote(parts.path)
            if path == "/v1beta/models":
                self._list(query)
            elif path.startswith("/v1beta/models/"):
                name = path.removeprefix("/v1beta/")
                entry = next((m for m in fake.models if m["name"] == name), None)
                if entry is None:
                    self._error(not_found(name.removeprefix("models/")))
                else:
                    self._json(200, entry)
            else:
                self._error(error_reply(404, "NOT_FOUND", "Requested entity was not found."))

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            entry = self._record(parts.path, query, raw)
            if not self._authorised(query):
                return
            path = unquote(parts.path)
            if not (path.startswith("/v1beta/models/") and path.endswith(":streamGenerateContent")):
                self._error(error_reply(404, "NOT_FOUND", "Requested entity was not found."))
                return
            if query.get("alt") != ["sse"]:
                self._error(
                    error_reply(400, "INVALID_ARGUMENT", "this fake only streams with alt=sse")
                )
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._error(error_reply(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
                return
            if fake.validate:
                model = path.removeprefix("/v1beta/models/").removesuffix(":streamGenerateContent")
                issued = fake.issued_signatures if fake.strict_signatures else None
                problem = validate_request(
                    body, model, signatures=issued, sniff_images=fake.sniff_images
                )
                if problem is not None:
                    fake.rejected.append((entry, problem))
                    self._error(error_reply(400, "INVALID_ARGUMENT", problem))
                    return
            reply = fake._next()
            if reply is None:
                self._error(
                    error_reply(400, "FAILED_PRECONDITION", "the Gemini fake has no reply left")
                )
            elif reply.status >= 400:
                time.sleep(reply.first_delay)
                self._error(reply)
            else:
                fake.issued_signatures.update(_signatures_in(reply.events()))
                self._stream(reply)

        # -- pieces ----------------------------------------------------------------------------

        def _record(self, path: str, query: dict[str, list[str]], raw: bytes) -> Recorded:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            entry = Recorded(self.command, path, query, headers, raw, body)
            fake._record(entry)
            return entry

        def _authorised(self, query: dict[str, list[str]]) -> bool:
            key = self.headers.get("x-goog-api-key") or (query.get("key") or [None])[0]
            if fake.api_key is None or key == fake.api_key:
                return True
            self._error(invalid_key() if key else permission_denied())
            return False

        def _list(self, query: dict[str, list[str]]) -> None:
            size = min(int((query.get("pageSize") or [fake.page_size])[0]), fake.page_size)
            start = int((query.get("pageToken") or ["0"])[0] or 0)
            page: dict[str, Any] = {"models": fake.models[start : start + size]}
            if start + size < len(fake.models):
                page["nextPageToken"] = str(start + size)
            self._json(200, page)

        def _json(self, status: int, data: Any, extra: dict[str, str] | None = None) -> None:
            body = json.dumps(data, indent=2).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Vary", "Origin, X-Origin, Referer")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, reply: Reply) -> None:
            self._json(reply.status, reply.error, reply.headers)

        def _stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Disposition", "attachment")
            self.send_header("Vary", "Origin, X-Origin, Referer")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Server-Timing", "gfet4t7; dur=512")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            if reply.first_delay:
                time.sleep(reply.first_delay)
            events: list[str] = [json.dumps(e, ensure_ascii=False) for e in reply.events()]
            if reply.malformed_at is not None:
                bad = events[reply.malformed_at]
                events[reply.malformed_at] = bad[: len(bad) // 2]  # cut mid-JSON
            if reply.error is not None:
                after = reply.error_after if reply.error_after is not None else 0
                events = events[:after]
            elif reply.end_after is not None:
                events = events[: reply.end_after]
            for n, data in enumerate(events):
                if reply.drop_after is not None and n == reply.drop_after:
                    self._drop()
                    return
                if n and reply.delay:
                    time.sleep(reply.delay)
                self._chunk(f"data: {data}\r\n\r\n".encode())
            if reply.drop_after is not None:
                self._drop()
                return
            if reply.error is not None:
                if reply.raw_error_lines:
                    self._chunk((json.dumps(reply.error, indent=2) + "\n").encode())
                else:
                    self._chunk(f"data: {json.dumps(reply.error)}\r\n\r\n".encode())
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _drop(self) -> None:
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler
