"""A fake OpenAI Chat Completions API: a real HTTP server on 127.0.0.1 streaming scripted replies.

It speaks the streaming format as OpenAI sends it: `content-type: text/event-stream`, chunked
transfer encoding, one `data: {chat.completion.chunk}` line per event (a first chunk carrying the
role, content or tool-call deltas keyed by `index`, a chunk with `finish_reason`, then, when the
request asked for `stream_options.include_usage`, a chunk with empty `choices` and the usage; every
other chunk carries `"usage": null`), and `data: [DONE]` last. Errors are JSON bodies shaped
`{"error": {"message", "type", "param", "code"}}`. It also answers GET /v1/models (and LM Studio's
GET /api/v0/models when given a list). Every request is recorded (method, path, headers, raw
bytes, parsed JSON, arrival time on the monotonic clock) for assertions.

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
import contextlib
import json
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
