"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 that streams scripted replies.

It speaks the documented streaming format: `event:` + `data:` lines per event (message_start,
content_block_start / content_block_delta / content_block_stop, ping, message_delta,
message_stop, error), `content-type: text/event-stream`, a `request-id` header, chunked
transfer encoding, and error bodies shaped `{"type": "error", "error": {"type", "message"}}`.
Every request is recorded (method, path, headers, raw bytes, parsed JSON) for assertions.

Use:
    with AnthropicFake() as fake:
        fake.push(Reply(text="hello"), overloaded(), Reply(tool_calls=[Call("Read", {...})]))
        ... point a client at fake.url ...
        fake.requests[0].json["messages"]
"""

from __future__ import annotations

import contextlib
import json
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

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Call:
    """A tool call the fake model makes; `input` may be raw JSON text (to send broken JSON)."""

    name: str
    input: dict[str, Any] | str = field(default_factory=dict)
    id: str = ""


@dataclass
class Reply:
    """One scripted answer to POST /v1/messages, with optional faults."""

    text: str = ""
    thinking: str = ""
    signature: str = "EqQBCkYIARgCIkD0c2lnbmF0dXJl"
    redacted_thinking: bool = False
    tool_calls: list[Call] = field(default_factory=list)
    input_tokens: int = 25
    output_tokens: int = 12
    cache_read: int | None = None  # cache_read_input_tokens (omitted when None)
    cache_write: int | None = None  # cache_creation_input_tokens (omitted when None)
    thinking_tokens: int | None = None  # usage.output_tokens_details.thinking_tokens
    stop_reason: str | None = None  # default: tool_use when there are calls, else end_turn
    chunk_size: int = 7
    ping: bool = True
    delta_usage_cumulative: bool = False  # message_delta repeats input/cache counts
    # Faults
    status: int = 200
    error_type: str = ""
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    first_delay: float = 0.0  # seconds between message_start and the first content event
    delay: float = 0.0  # seconds between later events
    error_event_after: int | None = None  # an `error` event after this many events
    drop_after: int | None = None  # the socket is closed after this many events
    end_after: int | None = None  # the body ends cleanly after this many events
    malformed_at: int | None = None  # the event at this index carries broken JSON
    linger: float = 0.0  # seconds the body stays open after the last event (a slow proxy)
    events: list[Event] | None = None  # raw events, instead of the ones built from the fields


def overloaded(message: str = "Overloaded", status: int = 529) -> Reply:
    return Reply(status=status, error_type="overloaded_error", error_message=message)


def rate_limited(retry_after: float | None = None, message: str = "rate limited") -> Reply:
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return Reply(status=429, error_type="rate_limit_error", error_message=message, headers=headers)


def http_error(status: int, error_type: str, message: str) -> Reply:
    return Reply(status=status, error_type=error_type, error_message=message)


def prompt_too_long() -> Reply:
    return http_error(
        400, "invalid_request_error", "prompt is too long: 215034 tokens > 200000 maximum"
    )


ERROR_REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    413: "Request Entity Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
    529: "Overloaded",
}  # fmt: skip


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    json: Any


def build_events(reply: Reply, model: str) -> list[Event]:
    """The events the real API sends for `reply`, in order."""
    if reply.events is not None:
        return list(reply.events)
    usage: dict[str, Any] = {"input_tokens": reply.input_tokens}
    if reply.cache_write is not None:
        usage["cache_creation_input_tokens"] = reply.cache_write
    if reply.cache_read is not None:
        usage["cache_read_input_tokens"] = reply.cache_read
    usage["output_tokens"] = 1
    usage["service_tier"] = "standard"
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": usage,
    }  # fmt: skip
    events: list[Event] = [("message_start", {"type": "message_start", "message": message})]
    if reply.ping:
        events.append(("ping", {"type": "ping"}))
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index,
                                     "content_block": start})
        )  # fmt: skip
        for delta in deltas:
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": delta})
            )  # fmt: skip
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    size = max(1, reply.chunk_size)
    if reply.thinking:
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(reply.thinking, size)]
        if reply.signature:
            deltas.append({"type": "signature_delta", "signature": reply.signature})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    if reply.redacted_thinking:
        block({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}, [])
    if reply.text:
        block(
            {"type": "text", "text": ""},
            [{"type": "text_delta", "text": p} for p in _pieces(reply.text, size)],
        )
    for n, call in enumerate(reply.tool_calls):
        raw = call.input if isinstance(call.input, str) else json.dumps(call.input)
        parts = ["", *_pieces(raw, size)]  # the API opens with an empty partial_json
        block(
            {"type": "tool_use", "id": call.id or f"toolu_{n:02d}{uuid.uuid4().hex[:20]}",
             "name": call.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": p} for p in parts],
        )  # fmt: skip
    stop = reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")
    delta_usage: dict[str, Any] = {"output_tokens": reply.output_tokens}
    if reply.delta_usage_cumulative:
        delta_usage = {k: v for k, v in usage.items() if k not in ("output_tokens", "service_tier")}
        delta_usage["output_tokens"] = reply.output_tokens
    if reply.thinking_tokens is not None:
        delta_usage["output_tokens_details"] = {"thinking_tokens": reply.thinking_tokens}
    events.append(
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": delta_usage})
    )  # fmt: skip
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-reply (tests that stop reading) are expected; bugs are not.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class AnthropicFake:
    """The server; a context manager. `push` scripts replies, `requests` records what came."""

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.models: list[dict[str, Any]] = [
            {"type": "model", "id": "claude-sonnet-4-5-20250929",
             "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z",
             "max_input_tokens": 200_000, "max_tokens": 64_000},
            {"type": "model", "id": "claude-haiku-4-5-20251001",
             "display_name": "Claude Haiku 4.5", "created_at": "2025-10-01T00:00:00Z"},
        ]  # fmt: skip
        self.aliases: dict[str, str] = {"claude-sonnet-4-5": "claude-sonnet-4-5-20250929"}
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> AnthropicFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._replies)

    def message_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    def _next(self) -> Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None


def _handler_for(fake: AnthropicFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fake-anthropic"
        timeout = 10

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _record(self) -> Recorded:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            parts = urlsplit(self.path)
            rec = Recorded(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                raw,
                parsed,
            )
            fake.requests.append(rec)
            return rec

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status, ERROR_REASONS.get(status))
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
            if status in (429, 500, 529):
                self.send_header("x-should-retry", "true")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            rec = self._record()
            if rec.path == "/v1/models":
                limit = int(rec.query.get("limit", ["20"])[0])
                after = rec.query.get("after_id", [None])[0]
                ids = [m["id"] for m in fake.models]
                start = ids.index(after) + 1 if after in ids else 0
                page = fake.models[start : start + limit]
                self._json(
                    200,
                    {
                        "data": page,
                        "has_more": start + limit < len(ids),
                        "first_id": page[0]["id"] if page else None,
                        "last_id": page[-1]["id"] if page else None,
                    },
                )
                return
            if rec.path.startswith("/v1/models/"):
                wanted = unquote(rec.path.removeprefix("/v1/models/"))
                wanted = fake.aliases.get(wanted, wanted)
                for model in fake.models:
                    if model["id"] == wanted:
                        self._json(200, model)
                        return
                self._json(404, error_body("not_found_error", f"model: {wanted}"))
                return
            self._json(404, error_body("not_found_error", "Not Found"))

        def do_POST(self) -> None:
            rec = self._record()
            if rec.path != "/v1/messages":
                self._json(404, error_body("not_found_error", "Not Found"))
                return
            reply = fake._next()
            if reply is None:
                self._json(500, error_body("api_error", "the fake has no scripted reply left"))
                return
            if reply.status >= 400:
                body = error_body(reply.error_type or "api_error", reply.error_message or "error")
                self._json(reply.status, body, reply.headers)
                return
            model = rec.json.get("model", "claude") if isinstance(rec.json, dict) else "claude"
            self._stream(reply, build_events(reply, str(model)))

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _stream(self, reply: Reply, events: list[Event]) -> None:
            self.send_response(200, "OK")
            self.send_header("content-type", "text/event-stream; charset=utf-8")
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.flush()
            for i, (name, data) in enumerate(events):
                if reply.drop_after is not None and i >= reply.drop_after:
                    self._drop()
                    return
                if reply.end_after is not None and i >= reply.end_after:
                    break
                if reply.error_event_after is not None and i == reply.error_event_after:
                    err = error_body(reply.error_type or "overloaded_error",
                                     reply.error_message or "Overloaded")  # fmt: skip
                    err.pop("request_id")
                    self._chunk(f"event: error\ndata: {json.dumps(err)}\n\n".encode())
                    break
                if i == 1 and reply.first_delay:
                    time.sleep(reply.first_delay)
                elif i > 1 and reply.delay:
                    time.sleep(reply.delay)
                text = json.dumps(data)
                if reply.malformed_at == i:
                    text = text[: len(text) // 2]  # cut mid-object: not JSON
                self._chunk(f"event: {name}\ndata: {text}\n\n".encode())
            if reply.linger:
                time.sleep(reply.linger)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler
