"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 that streams scripted replies.

It speaks the documented streaming format: `event:` + `data:` lines per event (message_start,
content_block_start / content_block_delta / content_block_stop, ping, message_delta,
message_stop, error), `content-type: text/event-stream`, a `request-id` header, chunked
transfer encoding, and error bodies shaped `{"type": "error", "error": {"type", "message"}}`.
Every request is recorded (method, path, headers, raw bytes, parsed JSON) for assertions.

Each POST /v1/messages is first checked as the API checks it (`validate_request`: turns,
tool_use/tool_result pairing, ids, thinking, text and image blocks); a request the API would
refuse gets its 400 invalid_request_error, is added to `rejected`, and uses up no scripted reply.
With `strict_signatures`, thinking must carry a signature this server sent.

Use:
    with AnthropicFake() as fake:
        fake.push(Reply(text="hello"), overloaded(), Reply(tool_calls=[Call("Read", {...})]))
        ... point a client at fake.url ...
        fake.requests[0].json["messages"]
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
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


def _signatures_in(events: list[Event]) -> set[str]:
    found: set[str] = set()
    for _, data in events:
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "signature_delta":
            found.add(str(delta.get("signature")))
    return found


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


# -- request validation, as the API does it ----------------------------------------------------

THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_ID_PATTERN = "^[a-zA-Z0-9_-]+$"
_ID_RE = re.compile(_ID_PATTERN)
_TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_USER_BLOCKS = ("text", "image", "document", "tool_result", "search_result")
_ASSISTANT_BLOCKS = ("text", "thinking", "redacted_thinking", "tool_use", "server_tool_use")
_MAX_CACHE_BREAKPOINTS = 4


class Invalid(Exception):
    """A request the API refuses with 400 invalid_request_error; the text is the API's own."""


def validate_request(body: Any, signatures: set[str] | None = None) -> str | None:
    """The API's message for a request it refuses with 400, or None when it accepts it.

    Checks what the Messages API enforces on a request: required fields, block shapes (non-empty
    text, well-formed images, tool_use ids in the allowed charset, signed thinking), turns that
    start with the user and alternate, every tool_use answered by a tool_result in the very next
    message (results first) and no result without its call, the thinking rules, and at most four
    cache breakpoints. With `signatures`, a thinking block must carry one this server issued, as
    the real API verifies them cryptographically.
    """
    try:
        _check_request(body, signatures)
    except Invalid as exc:
        return str(exc)
    return None


def _check_request(body: Any, signatures: set[str] | None) -> None:
    if not isinstance(body, dict):
        raise Invalid("There was an error parsing the body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise Invalid("max_tokens: Field required")
    if max_tokens < 1:
        raise Invalid("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise Invalid("messages: Field required")
    if not isinstance(messages, list):
        raise Invalid("messages: Input should be a valid list")
    if not messages:
        raise Invalid("messages: at least one message is required")
    _check_system(body.get("system"))
    _check_tools(body.get("tools"))
    thinking = _check_thinking_param(body, max_tokens)
    if _count_cache_control(body) > _MAX_CACHE_BREAKPOINTS:
        raise Invalid(
            f"A maximum of {_MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {_count_cache_control(body)}."
        )
    for i, message in enumerate(messages):
        _check_message(i, message, last=i == len(messages) - 1, signatures=signatures)
    _check_turns(messages)
    _check_tool_pairing(messages)
    if thinking:
        _check_thinking_loop(messages)
    elif messages[-1]["role"] == "assistant" and any(
        b.get("type") in ("thinking", "redacted_thinking") for b in _blocks(messages[-1])
    ):
        raise Invalid(
            f"messages.{len(messages) - 1}.content.0: When thinking is disabled, an `assistant` "
            "message in the final position cannot contain `thinking`. To use thinking blocks, "
            "enable `thinking` in your request."
        )


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise Invalid("system: Input should be a valid string")
    for j, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise Invalid(f"system.{j}.type: Input should be 'text'")
        _check_text(block, f"system.{j}")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise Invalid("tools: Input should be a valid list")
    names: set[str] = set()
    for t, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise Invalid(f"tools.{t}: Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
            raise Invalid(
                f"tools.{t}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise Invalid(f"tools.{t}.custom.input_schema: Field required")
        if schema.get("type") != "object":
            raise Invalid(f"tools.{t}.custom.input_schema.type: Input should be 'object'")
        if name in names:
            raise Invalid("tools: Tool names must be unique.")
        names.add(name)


def _check_thinking_param(body: dict[str, Any], max_tokens: int) -> bool:
    thinking = body.get("thinking")
    if thinking is None:
        return False
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return False
    if kind != "enabled":
        raise Invalid(
            f"thinking: Input tag '{kind}' found using 'type' does not match any of the expected "
            "tags: 'disabled', 'enabled'"
        )
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise Invalid("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise Invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if max_tokens <= budget:
        raise Invalid(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
            f"documentation at {THINKING_DOCS}#max-tokens-and-context-window-size"
        )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise Invalid(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            f"documentation at {THINKING_DOCS}#feature-compatibility"
        )
    return True


def _count_cache_control(node: Any) -> int:
    if isinstance(node, dict):
        return int("cache_control" in node) + sum(_count_cache_control(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_cache_control(v) for v in node)
    return 0


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content)


def _check_message(i: int, message: Any, *, last: bool, signatures: set[str] | None) -> None:
    if not isinstance(message, dict):
        raise Invalid(f"messages.{i}: Input should be a valid dictionary")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
    content = message.get("content")
    if content is None:
        raise Invalid(f"messages.{i}.content: Field required")
    prefill = last and role == "assistant"
    if isinstance(content, str):
        if not content and not prefill:
            raise Invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        if content and not content.strip() and not prefill:
            raise Invalid("messages: text content blocks must contain non-whitespace text")
        return
    if not isinstance(content, list):
        raise Invalid(f"messages.{i}.content: Input should be a valid list")
    if not content and not prefill:
        raise Invalid(
            f"messages.{i}: all messages must have non-empty content except for the optional "
            "final assistant message"
        )
    allowed = _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS
    seen_thinking = False
    for j, block in enumerate(content):
        where = f"messages.{i}.content.{j}"
        if not isinstance(block, dict):
            raise Invalid(f"{where}: Input should be a valid dictionary")
        kind = block.get("type")
        if kind not in allowed:
            raise Invalid(
                f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the "
                f"expected tags for a `{role}` message: {', '.join(repr(a) for a in allowed)}"
            )
        _check_cache_control(block, where)
        if kind == "text":
            _check_text(block, where)
        elif kind == "image":
            _check_image(block, where)
        elif kind == "tool_use":
            _check_tool_use(block, where)
        elif kind == "tool_result":
            _check_tool_result(block, where)
        elif kind in ("thinking", "redacted_thinking"):
            seen_thinking = True
            _check_thinking_block(block, where, signatures)
    if seen_thinking and content[0].get("type") not in ("thinking", "redacted_thinking"):
        raise Invalid(
            f"messages.{i}.content.0: If an assistant message contains any thinking blocks, the "
            f"first block must be thinking or redacted_thinking. Found {content[0].get('type')}."
        )


def _check_cache_control(block: dict[str, Any], where: str) -> None:
    control = block.get("cache_control")
    if control is None:
        return
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise Invalid(f"{where}.cache_control.type: Input should be 'ephemeral'")
    if block.get("type") == "text" and not block.get("text"):
        raise Invalid(f"{where}.text: cache_control cannot be set for empty text blocks")


def _check_text(block: dict[str, Any], where: str) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise Invalid(f"{where}.text: Field required")
    if not text:
        raise Invalid("messages: text content blocks must be non-empty")
    if not text.strip():
        raise Invalid("messages: text content blocks must contain non-whitespace text")


_MAGIC = {
    "image/png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": lambda b: b.startswith(b"\xff\xd8\xff"),
    "image/gif": lambda b: b.startswith((b"GIF87a", b"GIF89a")),
    "image/webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
}


def _check_image(block: dict[str, Any], where: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise Invalid(f"{where}.image.source: Field required")
    kind = source.get("type")
    if kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"]:
            raise Invalid(f"{where}.image.source.url.url: Field required")
        return
    if kind != "base64":
        raise Invalid(
            f"{where}.image.source: Input tag '{kind}' found using 'type' does not match any of "
            "the expected tags: 'base64', 'url', 'file'"
        )
    media_type = source.get("media_type")
    if media_type not in IMAGE_TYPES:
        raise Invalid(
            f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
            "'image/gif' or 'image/webp'"
        )
    data = source.get("data")
    if not isinstance(data, str) or not data:
        raise Invalid(f"{where}.image.source.base64.data: Field required")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(f"{where}.image.source.base64.data: Invalid base64 data") from None
    if not _MAGIC[media_type](raw):
        raise Invalid(
            f"{where}.image.source.base64.data: Image does not match the provided media type "
            f"{media_type}"
        )


def _check_tool_use(block: dict[str, Any], where: str) -> None:
    call_id = block.get("id")
    if not isinstance(call_id, str) or not _ID_RE.match(call_id):
        raise Invalid(f"{where}.tool_use.id: String should match pattern '{_ID_PATTERN}'")
    name = block.get("name")
    if not isinstance(name, str) or not name:
        raise Invalid(f"{where}.tool_use.name: String should have at least 1 character")
    if not isinstance(block.get("input"), dict):
        raise Invalid(f"{where}.tool_use.input: Input should be a valid dictionary")


def _check_tool_result(block: dict[str, Any], where: str) -> None:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not _ID_RE.match(call_id):
        raise Invalid(
            f"{where}.tool_result.tool_use_id: String should match pattern '{_ID_PATTERN}'"
        )
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Invalid(f"{where}.tool_result.content: Input should be a valid list")
    for k, inner in enumerate(content):
        inner_where = f"{where}.tool_result.content.{k}"
        if not isinstance(inner, dict) or inner.get("type") not in ("text", "image"):
            raise Invalid(f"{inner_where}.type: Input should be 'text' or 'image'")
        if inner["type"] == "text":
            _check_text(inner, inner_where)
        else:
            _check_image(inner, inner_where)


def _check_thinking_block(block: dict[str, Any], where: str, signatures: set[str] | None) -> None:
    if block["type"] == "redacted_thinking":
        if not isinstance(block.get("data"), str) or not block["data"]:
            raise Invalid(f"{where}.redacted_thinking.data: Field required")
        return
    if not isinstance(block.get("thinking"), str):
        raise Invalid(f"{where}.thinking.thinking: Field required")
    signature = block.get("signature")
    if not isinstance(signature, str) or not signature:
        raise Invalid(f"{where}.thinking.signature: Field required")
    if signatures is not None and signature not in signatures:
        raise Invalid(f"{where}: Invalid `signature` in `thinking` block")


def _check_turns(messages: list[dict[str, Any]]) -> None:
    if messages[0]["role"] != "user":
        raise Invalid('messages: first message must use the "user" role')
    for before, message in itertools.pairwise(messages):
        if before["role"] == message["role"]:
            raise Invalid(
                'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{message["role"]}" roles in a row'
            )


def _tool_use_ids(message: dict[str, Any]) -> list[str]:
    return [b["id"] for b in _blocks(message) if b.get("type") == "tool_use"]


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    seen_ids: set[str] = set()
    for i, message in enumerate(messages):
        blocks = _blocks(message)
        if message["role"] == "assistant":
            ids = _tool_use_ids(message)
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_use":
                    if block["id"] in seen_ids:
                        raise Invalid(f"messages.{i}.content.{j}: `tool_use` ids must be unique")
                    seen_ids.add(block["id"])
            if not ids:
                continue
            # The results must lead the very next message, before anything else in it.
            answered: set[str] = set()
            if i + 1 < len(messages):
                for block in _blocks(messages[i + 1]):
                    if block.get("type") != "tool_result":
                        break
                    answered.add(block["tool_use_id"])
            missing = [c for c in ids if c not in answered]
            if missing:
                raise Invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                    "corresponding `tool_result` block in the next message."
                )
            continue
        previous = _tool_use_ids(messages[i - 1]) if i > 0 else []
        results: set[str] = set()
        for j, block in enumerate(blocks):
            if block.get("type") != "tool_result":
                continue
            call_id = block["tool_use_id"]
            if call_id not in previous:
                raise Invalid(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {call_id}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
            if call_id in results:
                raise Invalid(
                    f"messages.{i}.content.{j}: each `tool_use` must have a single result. Found "
                    f"multiple `tool_result` blocks with id: {call_id}"
                )
            results.add(call_id)


def _has_tool_result(message: dict[str, Any]) -> bool:
    return message["role"] == "user" and any(
        b.get("type") == "tool_result" for b in _blocks(message)
    )


def _check_thinking_loop(messages: list[dict[str, Any]]) -> None:
    """With thinking on, the assistant message that began the unfinished tool loop (the one the
    trailing tool_result messages continue) must start with a thinking block."""
    if len(messages) < 2 or not _has_tool_result(messages[-1]):
        return
    start = len(messages) - 2
    while start >= 2 and _has_tool_result(messages[start - 1]):
        start -= 2
    first = _blocks(messages[start])[0].get("type")
    if first not in ("thinking", "redacted_thinking"):
        raise Invalid(
            f"messages.{start}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
            f"found `{first}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` "
            "blocks). We recommend you include thinking blocks from previous turns. To avoid this "
            f"requirement, disable `thinking`. Please consult our documentation at {THINKING_DOCS}"
        )


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
        # Requests are checked as the API checks them; refused ones get its 400 and are kept here.
        self.validate = True
        self.rejected: list[tuple[Recorded, str]] = []
        # Signatures of the thinking this server sent; with strict_signatures, a thinking block
        # must carry one of them (the API verifies its own signatures, so another's fail).
        self.strict_signatures = False
        self.issued_signatures: set[str] = set()
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
            if fake.validate:
                issued = fake.issued_signatures if fake.strict_signatures else None
                problem = validate_request(rec.json, issued)
                if problem is not None:
                    fake.rejected.append((rec, problem))
                    self._json(400, error_body("invalid_request_error", problem))
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
            events = build_events(reply, str(model))
            fake.issued_signatures.update(_signatures_in(events))
            self._stream(reply, events)

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
