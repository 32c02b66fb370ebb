"""A fake OpenAI Chat Completions API: a real HTTP server on 127.0.0.1 streaming scripted replies.

It speaks the streaming format as OpenAI sends it: `content-type: text/event-stream`, chunked
transfer encoding, one `data: {chat.completion.chunk}` line per event (a first chunk carrying the
role, content or tool-call deltas keyed by `index`, a chunk with `finish_reason`, then, when the
request asked for `stream_options.include_usage`, a chunk with empty `choices` and the usage; every
other chunk carries `"usage": null`), and `data: [DONE]` last. Errors are JSON bodies shaped
`{"error": {"message", "type", "param", "code"}}`. It also answers GET /v1/models (and LM Studio's
GET /api/v0/models when given a list). Every request is recorded (method, path, headers, raw
bytes, parsed JSON, arrival time on the monotonic clock) for assertions.

Each chat request is first checked as the API checks it (`validate_request`: tool messages
answering the assistant tool_calls just before them, every call answered, ids, content parts);
a request the API would refuse gets its 400 error body, is added to `rejected`, and uses up no
scripted reply. With `sniff_images`, image data URLs must also decode to a real PNG/JPEG/GIF/WebP.

Use:
    with OpenAIFake() as fake:
        fake.push(Reply(text="hello"), rate_limited(0.05), Reply(tool_calls=[Call("Read", {...})]))
        ... point a client at fake.base_url (…/v1) ...
        fake.chat_bodies[0]["messages"]

Run as a script it serves until killed, for benchmarks in another process:
    python tests/fakes/openai_fake.py [--chunks N]
prints its port on the first line of stdout; every chat request then gets an answer of N text
chunks (default 3). GET /_fake/requests returns the recorded requests (method, path, arrived) and
POST /_fake/reset forgets them; POST /_fake/default sets the answer ({"chunks": N}).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Call:
    """A tool call the fake model makes; `arguments` given as text is sent as is (broken JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str = ""


@dataclass
class Reply:
    """One scripted answer to POST /v1/chat/completions, with optional faults."""

    text: str = ""
    chunks: list[str] | None = None  # content deltas as given (else `text` cut in chunk_size)
    reasoning: str = ""  # streamed in delta[reasoning_field], as DeepSeek / vLLM / Ollama do
    reasoning_field: str = "reasoning_content"
    tool_calls: list[Call] = field(default_factory=list)
    finish_reason: str | None = None  # default: tool_calls when there are calls, else stop
    prompt_tokens: int = 31
    completion_tokens: int = 9
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    chunk_size: int = 5
    arg_chunk: int = 7  # argument characters per tool-call delta
    # Faults
    status: int = 200
    error: dict[str, Any] | None = None  # the `error` object of an error body (status >= 400)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    stream_error: dict[str, Any] | None = None  # `data: {"error": …}` after the content events
    drop_after: int | None = None  # close the connection after this many events
    malformed_at: int | None = None  # replace event number N (0-based) with broken JSON
    first_delay: float = 0.0  # seconds before the first event (after the headers)
    delay: float = 0.0  # seconds between events
    done: bool = True  # send `data: [DONE]`
    usage: bool = True  # send the usage chunk (when the request asked for it)
    whole: bool = False  # ignore `stream: true` and answer with one chat.completion object
    content_type: str = "text/event-stream; charset=utf-8"  # some servers mislabel the stream
    preamble: str = ""  # raw text before the first event (OpenRouter: ": OPENROUTER PROCESSING")


def rate_limited(retry_after: float | None = 0.05, message: str = "") -> Reply:
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return Reply(
        status=429,
        headers=headers,
        error={
            "message": message
            or "Rate limit reached for gpt-4.1 in organization org-fake on tokens per min (TPM): "
            "Limit 30000, Used 30000, Requested 1200. Please try again in 50ms.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    )


def overloaded() -> Reply:
    return Reply(
        status=503,
        error={
            "message": "The engine is currently overloaded, please try again later",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    )


def context_overflow() -> Reply:
    return Reply(
        status=400,
        error={
            "message": "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 130532 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
    )


def error_reply(status: int, message: str, code: str | None = None) -> Reply:
    return Reply(
        status=status,
        error={"message": message, "type": "invalid_request_error", "param": None, "code": code},
    )


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes
    json: Any
    arrived: float  # time.monotonic() when the request line had arrived


CREATED = 1_760_000_000
FINGERPRINT = "fp_fake0001"


def chunk_events(reply: Reply, model: str, include_usage: bool) -> list[str]:
    """The `data:` payloads of one streamed answer, in order (without [DONE])."""
    base: dict[str, Any] = {
        "id": "chatcmpl-fake0001",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = dict(base)
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if include_usage:
            body["usage"] = None
        body["obfuscation"] = "xYz"  # OpenAI pads chunks with this; clients must ignore it
        return json.dumps(body, separators=(",", ":"))

    events: list[str] = []
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    if reply.reasoning:
        first["content"] = None
        first[reply.reasoning_field] = ""
    elif reply.tool_calls and not (reply.text or reply.chunks):
        first["content"] = None
    events.append(chunk(first))
    for piece in _pieces(reply.reasoning, reply.chunk_size):
        events.append(chunk({"content": None, reply.reasoning_field: piece}))
    pieces = reply.chunks if reply.chunks is not None else _pieces(reply.text, reply.chunk_size)
    for piece in pieces:
        events.append(chunk({"content": piece}))
    for index, call in enumerate(reply.tool_calls):
        arguments = (
            call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
        )
        call_id = call.id or f"call_fake{index:04d}XyZ"
        events.append(chunk({"tool_calls": [{
            "index": index, "id": call_id, "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }]}))  # fmt: skip
        for piece in _pieces(arguments, reply.arg_chunk):
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    if reply.stream_error is not None:
        events.append(json.dumps({"error": reply.stream_error}))
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    events.append(chunk({}, finish))
    if include_usage and reply.usage:
        body = dict(base)
        body["choices"] = []
        body["usage"] = usage_object(reply)
        body["obfuscation"] = "aB"
        events.append(json.dumps(body, separators=(",", ":")))
    if reply.malformed_at is not None:
        events[reply.malformed_at] = '{"id":"chatcmpl-fake0001","object":"chat.completion.chu'
    return events


def usage_object(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_object(reply: Reply, model: str) -> dict[str, Any]:
    """The non-streamed answer (`chat.completion`), for a server that ignores `stream`."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(reply.chunks) if reply.chunks is not None else (reply.text or None),
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id or f"call_fake{i:04d}XyZ", "type": "function",
             "function": {"name": c.name, "arguments": c.arguments
                          if isinstance(c.arguments, str) else json.dumps(c.arguments)}}
            for i, c in enumerate(reply.tool_calls)
        ]  # fmt: skip
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    return {
        "id": "chatcmpl-fake0001",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_object(reply),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


# -- request validation, as the API does it ----------------------------------------------------

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
USER_PARTS = ("text", "image_url", "input_audio", "file")
IMAGE_FORMATS = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff", "gif": b"GIF8",
                 "webp": b"RIFF"}  # fmt: skip
MAX_TOOL_CALL_ID = 40
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DATA_URL = re.compile(r"^data:image/([a-z]+);base64,(.*)$", re.DOTALL)


class Invalid(Exception):
    """A request the API refuses with 400; carries its `error` object."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.error = {
            "message": message, "type": "invalid_request_error", "param": param, "code": code,
        }  # fmt: skip


def validate_request(body: Any, *, sniff_images: bool = True) -> dict[str, Any] | None:
    """The `error` object of the 400 the API answers `body` with, or None when it accepts it.

    Checks what Chat Completions enforces: model and messages present, valid roles and content
    parts (text, well-formed image data URLs), assistant tool calls with non-empty ids of at most
    40 characters and string arguments, every `tool` message answering a call of the assistant
    message just before it, every call answered before the next user or assistant message, and
    the parameters OpenAI's reasoning models refuse. `sniff_images`: the decoded image bytes
    must be a PNG, JPEG, GIF or WebP, as the API finds when it reads the image.
    """
    try:
        _check_request(body, sniff_images)
    except Invalid as exc:
        return exc.error
    return None


def _empty_array(where: str) -> Invalid:
    return Invalid(
        f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got an "
        "empty array instead.",
        where,
        "empty_array",
    )


def _missing(where: str) -> Invalid:
    return Invalid(f"Missing required parameter: '{where}'.", where, "missing_required_parameter")


def _check_request(body: Any, sniff_images: bool) -> None:
    if not isinstance(body, dict):
        raise Invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Invalid("you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise Invalid(
            "Invalid type for 'messages': expected an array of objects, but got "
            f"{type(messages).__name__} instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise _empty_array("messages")
    if "stream_options" in body and body.get("stream") is not True:
        raise Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    _check_reasoning_params(model, body)
    _check_tools(body.get("tools"))
    for i, message in enumerate(messages):
        _check_message(i, message, sniff_images)
    _check_tool_pairing(messages)


def _check_reasoning_params(model: str, body: dict[str, Any]) -> None:
    name = model.rsplit("/", 1)[-1].lower()
    if "/" in model or not name.startswith(("o1", "o3", "o4", "gpt-5")):
        return
    if "max_tokens" in body:
        raise Invalid(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise Invalid(
            f"Unsupported value: 'temperature' does not support {temperature} with this model. "
            "Only the default (1) value is supported.",
            "temperature",
            "unsupported_value",
        )


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise Invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    for t, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise Invalid(
                f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
                f"tools[{t}].type",
                "invalid_value",
            )
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _missing(f"tools[{t}].function")
        name = function.get("name")
        if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
            raise Invalid(
                f"Invalid 'tools[{t}].function.name': string does not match pattern. Expected a "
                "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{t}].function.name",
                "invalid_value",
            )


def _check_message(i: int, message: Any, sniff_images: bool) -> None:
    if not isinstance(message, dict):
        raise Invalid(
            f"Invalid type for 'messages[{i}]': expected an object, but got "
            f"{type(message).__name__} instead.",
            f"messages[{i}]",
            "invalid_type",
        )
    role = message.get("role")
    if role not in ROLES:
        raise Invalid(
            f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
            "'function', 'tool', and 'developer'.",
            f"messages[{i}].role",
            "invalid_value",
        )
    content = message.get("content")
    if role == "assistant":
        _check_assistant(i, message)
        return
    if content is None:
        raise _missing(f"messages[{i}].content")
    if role == "tool":
        if not isinstance(message.get("tool_call_id"), str):
            raise _missing(f"messages[{i}].tool_call_id")
        _check_parts(i, content, ("text",))
        return
    _check_parts(i, content, USER_PARTS if role == "user" else ("text",), sniff_images)


def _check_parts(i: int, content: Any, allowed: tuple[str, ...], sniff_images: bool = True) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Invalid(
            f"Invalid type for 'messages[{i}].content': expected one of a string or array of "
            "objects, but got an object instead.",
            f"messages[{i}].content",
            "invalid_type",
        )
    if not content:
        raise _empty_array(f"messages[{i}].content")
    for j, part in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            listed = ", ".join(f"'{a}'" for a in allowed[:-1])
            supported = f"{listed}, and '{allowed[-1]}'" if listed else f"'{allowed[-1]}'"
            raise Invalid(
                f"Invalid value: '{kind}'. Supported values are: {supported}.",
                f"{where}.type",
                "invalid_value",
            )
        if kind == "text" and not isinstance(part.get("text"), str):
            raise _missing(f"{where}.text")
        if kind == "image_url":
            _check_image_url(part, where, sniff_images)


def _check_image_url(part: dict[str, Any], where: str, sniff: bool) -> None:
    image = part.get("image_url")
    if not isinstance(image, dict) or not isinstance(image.get("url"), str):
        raise _missing(f"{where}.image_url")
    url = image["url"]
    if url.startswith(("http://", "https://")):
        return
    match = _DATA_URL.match(url)
    if match is None:
        raise Invalid(
            f"Invalid '{where}.image_url.url'. Expected a base64-encoded data URL with an image "
            "MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got an "
            "unsupported value.",
            f"{where}.image_url.url",
            "invalid_value",
        )
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    known = match.group(1) in IMAGE_FORMATS
    if not raw or not known or (sniff and not raw.startswith(tuple(IMAGE_FORMATS.values()))):
        raise Invalid(
            "You uploaded an unsupported image. Please make sure your image has of one the "
            "following formats: ['png', 'jpeg', 'gif', 'webp'].",
            None,
            "invalid_image_format",
        )


def _check_assistant(i: int, message: dict[str, Any]) -> None:
    content = message.get("content")
    calls = message.get("tool_calls")
    if content is None and calls is None:
        raise Invalid(
            "Invalid value for 'content': expected a string, got null.",
            f"messages.[{i}].content",
        )
    if content is not None:
        _check_parts(i, content, ("text", "refusal"))
    if calls is None:
        return
    if not isinstance(calls, list):
        raise Invalid(
            f"Invalid type for 'messages[{i}].tool_calls': expected an array of objects.",
            f"messages[{i}].tool_calls",
            "invalid_type",
        )
    if not calls:
        raise _empty_array(f"messages[{i}].tool_calls")
    for k, call in enumerate(calls):
        where = f"messages[{i}].tool_calls[{k}]"
        if not isinstance(call, dict):
            raise _missing(where)
        call_id = call.get("id")
        if not isinstance(call_id, str):
            raise _missing(f"{where}.id")
        if not call_id:
            raise Invalid(
                f"Invalid '{where}.id': empty string. Expected a string with minimum length 1, "
                "but got an empty string instead.",
                f"{where}.id",
                "empty_string",
            )
        if len(call_id) > MAX_TOOL_CALL_ID:
            raise Invalid(
                f"Invalid '{where}.id': string too long. Expected a string with maximum length "
                f"{MAX_TOOL_CALL_ID}, but got a string with length {len(call_id)} instead.",
                f"{where}.id",
                "string_above_max_length",
            )
        if call.get("type") != "function":
            raise Invalid(
                f"Invalid value: '{call.get('type')}'. Supported values are: 'function'.",
                f"{where}.type",
                "invalid_value",
            )
        function = call.get("function")
        if not isinstance(function, dict):
            raise _missing(f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise Invalid(
                f"Invalid '{where}.function.name': empty string. Expected a string with minimum "
                "length 1, but got an empty string instead.",
                f"{where}.function.name",
                "empty_string",
            )
        if not isinstance(function.get("arguments"), str):
            raise Invalid(
                f"Invalid type for '{where}.function.arguments': expected a string, but got "
                f"{type(function.get('arguments')).__name__} instead.",
                f"{where}.function.arguments",
                "invalid_type",
            )


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    calls: list[str] = []  # the ids of the assistant message the current tool run answers
    pending: list[str] = []
    in_run = False  # only tool messages since an assistant message with tool calls
    for i, message in enumerate(messages):
        if message["role"] == "tool":
            call_id = message["tool_call_id"]
            if not in_run:
                raise Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if call_id not in calls or call_id not in pending:
                raise Invalid(
                    f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' "
                    "of previous message.",
                    f"messages.[{i}].tool_call_id",
                )
            pending.remove(call_id)
            continue
        if pending:
            raise _unanswered(pending, i)
        calls = [c["id"] for c in message.get("tool_calls") or []]
        pending = list(calls)
        in_run = bool(calls)
    if pending:
        raise _unanswered(pending, len(messages))


def _unanswered(pending: list[str], i: int) -> Invalid:
    return Invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        f"{', '.join(pending)}",
        f"messages.[{i}].role",
    )


DEFAULT_MODELS = [
    {"id": "gpt-4.1", "object": "model", "created": CREATED, "owned_by": "system"},
    {"id": "gpt-4o-mini", "object": "model", "created": CREATED, "owned_by": "system"},
]


class OpenAIFake:
    """The server; `push` replies, read `requests` / `chat_bodies` afterwards."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default: Reply | None = None  # answer when nothing is queued
        self.requests: list[Recorded] = []
        # Requests are checked as the API checks them; refused ones get its 400 and are kept here.
        self.validate = True
        self.sniff_images = False  # also check that image data decodes to a real image format
        self.rejected: list[tuple[Recorded, dict[str, Any]]] = []
        self.models: list[dict[str, Any]] = list(DEFAULT_MODELS)
        self.lmstudio_models: list[dict[str, Any]] | None = None  # GET /api/v0/models
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        return [r.json for r in self.requests if r.path.endswith("/chat/completions")]

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def next_reply(self) -> Reply | None:
        with self._lock:
            return self.replies.popleft() if self.replies else self.default

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> OpenAIFake:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpenAIFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up
            super().handle_error(request, client_address)


def _handler(fake: OpenAIFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        arrived = 0.0

        def setup(self) -> None:
            super().setup()
            # As real servers do: small event writes go out at once, not after a delayed ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def parse_request(self) -> bool:
            self.arrived = time.monotonic()  # the request line has just been read
            return super().parse_request()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self) -> Recorded:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            rec = Recorded(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                raw,
                body,
                self.arrived,
            )
            if not self.path.startswith("/_fake/"):
                fake.record(rec)
            return rec

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-request-id", "req_fake0001")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._record()
            path = self.path.split("?", 1)[0]
            if path == "/v1/models":
                self._json(200, {"object": "list", "data": fake.models})
            elif path == "/api/v0/models" and fake.lmstudio_models is not None:
                self._json(200, {"object": "list", "data": fake.lmstudio_models})
            elif path == "/_fake/requests":
                self._json(200, [
                    {"method": r.method, "path": r.path, "arrived": r.arrived}
                    for r in fake.requests
                ])  # fmt: skip
            else:
                self._not_found()

        def do_POST(self) -> None:
            rec = self._record()
            path = self.path.split("?", 1)[0]
            if path == "/_fake/reset":
                fake.requests.clear()
                self._json(200, {})
                return
            if path == "/_fake/default":
                chunks = int((rec.json or {}).get("chunks", 3))
                fake.default = Reply(chunks=["tok "] * chunks)
                self._json(200, {})
                return
            if path != "/v1/chat/completions":
                self._not_found()
                return
            if fake.validate:
                problem = validate_request(rec.json, sniff_images=fake.sniff_images)
                if problem is not None:
                    fake.rejected.append((rec, problem))
                    self._json(400, {"error": problem})
                    return
            reply = fake.next_reply()
            if reply is None:
                error = {"message": "fake: no reply scripted", "type": "server_error"}
                self._json(500, {"error": error})
                return
            if reply.status >= 400:
                self._json(reply.status, {"error": reply.error or {}}, reply.headers)
                return
            body = rec.json if isinstance(rec.json, dict) else {}
            if reply.whole:
                self._json(200, completion_object(reply, str(body.get("model", ""))))
                return
            options = body.get("stream_options") or {}
            self._stream(reply, str(body.get("model", "")), bool(options.get("include_usage")))

        def _not_found(self) -> None:
            self._json(404, {"error": {"message": f"Invalid URL (POST {self.path})",
                                       "type": "invalid_request_error", "param": None,
                                       "code": None}})  # fmt: skip

        def _stream(self, reply: Reply, model: str, include_usage: bool) -> None:
            events = chunk_events(reply, model, include_usage)
            self.send_response(200)
            self.send_header("content-type", reply.content_type)
            self.send_header("transfer-encoding", "chunked")
            self.send_header("cache-control", "no-cache")
            self.send_header("x-request-id", "req_fake0001")
            self.send_header("openai-processing-ms", "12")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            if reply.preamble:
                self._send(reply.preamble.encode())
            if reply.first_delay:
                time.sleep(reply.first_delay)
            for n, data in enumerate(events):
                if reply.drop_after is not None and n >= reply.drop_after:
                    self._drop()
                    return
                self._send(f"data: {data}\n\n".encode())
                if reply.delay:
                    time.sleep(reply.delay)
            if reply.done:
                self._send(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _send(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _drop(self) -> None:
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=3)
    args = parser.parse_args()
    fake = OpenAIFake()
    fake.default = Reply(chunks=["tok "] * args.chunks)
    print(fake.port, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake._server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
