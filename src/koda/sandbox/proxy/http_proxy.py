"""The HTTP proxy: `CONNECT host:port` tunnels, and plain `GET http://host/...` requests.

Every destination is checked against the allowlist before any DNS lookup. A plain request is
forwarded once, rebuilt from its checked parts with `Connection: close`, so one connection can
never carry a second request to another host.
"""

from __future__ import annotations

import asyncio
import contextlib

from koda.sandbox.proxy.dial import DialError
from koda.sandbox.proxy.egress import Egress, refusal_message
from koda.sandbox.proxy.http_head import (
    AbsoluteTarget,
    BadRequest,
    RequestHead,
    parse_absolute,
    parse_head,
    read_head,
    split_host_port,
)
from koda.sandbox.proxy.relay import CHUNK, Conn, relay

LINGER = 2.0  # seconds an answered client may take to stop sending and close

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    411: "Length Required",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
# Hop-by-hop headers and Host (rebuilt from the checked target) are not passed on, and neither
# is any Proxy-* header: those, credentials included, were meant for this proxy.
_DROPPED = frozenset({"connection", "keep-alive", "te", "trailer", "upgrade", "host"})


async def serve_http(egress: Egress, client: Conn) -> None:
    try:
        async with asyncio.timeout(egress.handshake_timeout):
            raw = await read_head(client.reader)
        head = parse_head(raw)
        if head.method == "CONNECT":
            await _connect(egress, client, head)
        else:
            await _forward(egress, client, head)
    except (TimeoutError, asyncio.IncompleteReadError):
        return  # silent or gone: nothing to answer
    except BadRequest as exc:
        await _answer(client, exc.status, str(exc) + "\n")


async def _connect(egress: Egress, client: Conn, head: RequestHead) -> None:
    host, port = split_host_port(head.target, None)
    reason = egress.refusal(host, "http")
    if reason is not None:
        await _answer(client, 403, refusal_message(host, reason))
        return
    try:
        server = await egress.dialer.tunnel(host, port)
    except DialError as exc:
        await _answer(client, 504 if exc.kind == "timeout" else 502, f"{exc}\n")
        return
    client.writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await relay(client, server)


async def _forward(egress: Egress, client: Conn, head: RequestHead) -> None:
    target = parse_absolute(head.target)
    reason = egress.refusal(target.host, "http")
    if reason is not None:
        await _answer(client, 403, refusal_message(target.host, reason))
        return
    body_length = head.body_length()
    try:
        server = await egress.dialer.forwarder(target.host, target.port)
    except DialError as exc:
        await _answer(client, 504 if exc.kind == "timeout" else 502, f"{exc}\n")
        return
    upstream = egress.dialer.upstream
    if upstream is None:
        server.writer.write(_request(head, target, target.path, b""))
    else:
        absolute = f"http://{target.host_header}{target.path}"
        server.writer.write(_request(head, target, absolute, upstream.auth_header()))
    await relay(client, server, upload_limit=body_length)


def _request(head: RequestHead, target: AbsoluteTarget, request_target: str, extra: bytes) -> bytes:
    lines = [f"{head.method} {request_target} {head.version}", f"Host: {target.host_header}"]
    lines += [
        f"{name}: {value}"
        for name, value in head.headers
        if name.lower() not in _DROPPED and not name.lower().startswith("proxy-")
    ]
    lines.append("Connection: close")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n" + extra + b"\r\n"


async def _answer(client: Conn, status: int, text: str) -> None:
    body = text.encode()
    client.writer.write(
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode("ascii")
        + body
    )
    await client.writer.drain()
    await _linger(client)


async def _linger(client: Conn) -> None:
    """Half-close, then read what the client is still sending before the caller closes.

    Closing a socket with unread input makes the kernel send a reset, which can destroy the
    answer before the client reads it (a refused request that is still uploading its head).
    """
    client.writer.write_eof()
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(LINGER):
            while await client.reader.read(CHUNK):
                pass
