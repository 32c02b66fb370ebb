"""Reading and checking a proxy request head: the request line, the headers, the target.

Parsing is strict on purpose: what is forwarded is rebuilt from what was checked, so a line
with a stray CR or LF, an obsolete folded header, or a target with spaces or credentials is
refused instead of being passed on for another parser to read differently.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

MAX_HEAD = 64 * 1024

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(r"HTTP/1\.[01]")
_TARGET = re.compile(r"[\x21-\x7e]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class BadRequest(Exception):
    """A request the proxy answers with an error status and a short text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    def values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def body_length(self) -> int:
        """The request body's size; a chunked body cannot be bounded, so it is refused."""
        if self.values("transfer-encoding"):
            raise BadRequest(411, "chunked request bodies are not supported; send Content-Length")
        lengths = {v.strip() for v in self.values("content-length")}
        if not lengths:
            return 0
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise BadRequest(400, "invalid Content-Length")
        return int(next(iter(lengths)))


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """The bytes up to the blank line; raises IncompleteReadError if the client goes away."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise BadRequest(431, f"the request head is larger than {MAX_HEAD // 1024} KiB") from None
    if len(head) > MAX_HEAD:
        raise BadRequest(431, f"the request head is larger than {MAX_HEAD // 1024} KiB")
    return head


def parse_head(raw: bytes) -> RequestHead:
    lines = raw[:-4].decode("latin-1").split("\r\n")
    fields = lines[0].split(" ")
    if len(fields) != 3:
        raise BadRequest(400, "malformed request line")
    method, target, version = fields
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target):
        raise BadRequest(400, "malformed request line")
    if not _VERSION.fullmatch(version):
        raise BadRequest(400, "only HTTP/1.0 and HTTP/1.1 are supported")
    return RequestHead(method, target, version, [_header(line) for line in lines[1:]])


def _header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
        raise BadRequest(400, "malformed header line")
    return name, value.strip(" \t")


def split_host_port(authority: str, default_port: int | None) -> tuple[str, int]:
    """`host:port` or `[v6]:port` (the port optional when there is a default)."""
    if authority.startswith("["):
        host, bracket, rest = authority[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise BadRequest(400, f"malformed host {authority!r}")
        port_text = rest[1:] if rest else None
    elif authority.count(":") == 1:
        host, port_text = authority.split(":")
    elif ":" in authority:
        raise BadRequest(400, f"an IPv6 address must be in brackets: {authority!r}")
    else:
        host, port_text = authority, None
    if not host:
        raise BadRequest(400, f"no host in {authority!r}")
    return host, _port(port_text, default_port, authority)


def _port(text: str | None, default: int | None, authority: str) -> int:
    if text is None and default is not None:
        return default
    if text is None or not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise BadRequest(400, f"missing or invalid port in {authority!r}")
    return int(text)


@dataclass(frozen=True)
class AbsoluteTarget:
    host: str
    port: int
    path: str  # origin form: path and query, always starting with /

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"


def parse_absolute(target: str) -> AbsoluteTarget:
    scheme, sep, rest = target.partition("://")
    if not sep:
        raise BadRequest(400, "this is a proxy: send CONNECT host:port or an absolute http:// URL")
    if scheme.lower() == "https":
        raise BadRequest(400, "https:// goes through CONNECT, not a plain proxy request")
    if scheme.lower() != "http":
        raise BadRequest(400, f"only http:// URLs can be proxied, not {scheme}://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:end], rest[end:].split("#", 1)[0]
    if "@" in authority or "\\" in authority:
        raise BadRequest(400, "credentials or backslashes in a proxied URL are not supported")
    host, port = split_host_port(authority, 80)
    if not path.startswith("/"):
        path = "/" + path
    return AbsoluteTarget(host, port, path)
