"""Chaining to the user's own (corporate) HTTP proxy when the host reaches the net through one."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from koda.sandbox.proxy.relay import CHUNK, Conn

# The order curl and most tools use for https, which is what nearly all egress is.
_ENV_NAMES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


class UpstreamError(Exception):
    """The upstream proxy could not be reached, or refused the tunnel."""


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int
    authorization: str | None = None  # the Proxy-Authorization value, from user:pass@

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def auth_header(self) -> bytes:
        if self.authorization is None:
            return b""
        return f"Proxy-Authorization: {self.authorization}\r\n".encode("latin-1")


def parse_upstream(url: str) -> Upstream:
    """`http://[user:pass@]host[:port]`; without a scheme it is taken as http://, as curl does."""
    text = url.strip()
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"upstream proxy {url!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() != "http":
        raise ValueError(f"upstream proxy {url!r}: only http:// proxies can be chained")
    if not parts.hostname:
        raise ValueError(f"upstream proxy {url!r} has no host")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Upstream(parts.hostname, port, authorization)


def upstream_from_env(env: Mapping[str, str]) -> str | None:
    """The http:// proxy the host environment names, if any.

    https:// proxies (TLS to the proxy) and socks:// ones are skipped, and the next variable
    is tried: the proxies chain with a plain-HTTP CONNECT only, and chaining to a proxy they
    cannot speak to would break every allowed connection instead of going direct.
    """
    for name in _ENV_NAMES:
        value = env.get(name, "").strip()
        if not value:
            continue
        scheme = value.split("://", 1)[0].lower() if "://" in value else "http"
        if scheme == "http":
            return value
    return None


async def open_upstream(upstream: Upstream) -> Conn:
    try:
        reader, writer = await asyncio.open_connection(upstream.host, upstream.port, limit=CHUNK)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UpstreamError(
            f"cannot reach the upstream proxy {upstream.authority}: {reason}"
        ) from None
    return Conn(reader, writer)


async def tunnel_via(upstream: Upstream, host: str, port: int) -> Conn:
    """A connection to host:port through the upstream's CONNECT, ready for the client's bytes."""
    conn = await open_upstream(upstream)
    try:
        target = f"{host}:{port}".encode("ascii")
        conn.writer.write(
            b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, target, upstream.auth_header())
        )
        await conn.writer.drain()
        status = await _status_line(conn.reader, upstream)
    except BaseException:
        conn.abort()
        raise
    fields = status.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not fields[1].startswith("2"):
        conn.abort()
        raise UpstreamError(f"the upstream proxy {upstream.authority} answered {status!r}")
    return conn


async def _status_line(reader: asyncio.StreamReader, upstream: Upstream) -> str:
    """The answer's status line; the whole head is consumed so only tunnel bytes remain."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        raise UpstreamError(
            f"the upstream proxy {upstream.authority} closed the connection or sent no valid answer"
        ) from None
    return head.split(b"\r\n", 1)[0].decode("latin-1")
