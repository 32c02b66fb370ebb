"""Which URLs WebFetch may reach: public http(s) addresses only, checked after DNS resolution.

A model can be talked (by a page it read) into fetching the cloud metadata service or a
service on the user's machine or network. Every hop of a fetch is checked here: the scheme,
no credentials, and every address the host name resolves to. The caller then connects to the
checked address itself, so a second DNS answer (rebinding) cannot swap in another one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from koda.tools.base import ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_NAMES = frozenset({"localhost", "metadata.google.internal", "metadata.internal"})
BLOCKED_SUFFIXES = (".localhost", ".internal")
# Ranges Python's is_global does not exclude, or whose purpose makes a clearer message.
_NAMED = (
    ("cloud metadata", ipaddress.ip_network("169.254.169.254/32")),
    ("cloud metadata", ipaddress.ip_network("fd00:ec2::254/128")),
    ("shared (CGNAT)", ipaddress.ip_network("100.64.0.0/10")),
    ("IETF protocol", ipaddress.ip_network("192.0.0.0/24")),  # 192.0.0.192 is Oracle's metadata
)
# IPv6 forms that carry an IPv4 address, which is what a connection really reaches.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class UnsafeUrl(ToolError):
    """A URL WebFetch refuses to reach."""


@dataclass(frozen=True)
class Target:
    """A checked hop: where to connect (`address`) and what to ask that server for."""

    url: str
    scheme: str
    host: str  # as sent in the Host header and for TLS (IDNA-encoded)
    port: int
    address: str
    path: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{address}:{self.port}{self.path}"


class NetGuard:
    """Checks URLs and resolves them to a public address.

    `trusted_hosts` maps host names to addresses used without the public-address check; it
    exists so tests can reach servers on 127.0.0.1 under a name. Only exact names are trusted:
    a redirect to 127.0.0.1 or localhost is still checked and refused.
    """

    def __init__(self, trusted_hosts: Mapping[str, str] | None = None) -> None:
        self._trusted = {k.lower(): v for k, v in (trusted_hosts or {}).items()}

    async def check(self, url: str) -> Target:
        parts = _split(url)
        host = _host(parts, url)
        port = _port(parts, url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        scheme = parts.scheme.lower()
        if host in self._trusted:
            return Target(url, scheme, host, port, self._trusted[host], path)
        if host in BLOCKED_NAMES or host.endswith(BLOCKED_SUFFIXES):
            raise UnsafeUrl(f"Refused {url}: {host} is a local or internal name.")
        literal = _ip(host)
        addresses = [literal] if literal else await _resolve(host, port)
        for address in addresses:
            reason = blocked_reason(address)
            if reason:
                shown = host if literal else f"{host} ({address})"
                article = "an" if reason[0] in "aeiouAEIOU" else "a"
                raise UnsafeUrl(f"Refused {url}: {shown} is {article} {reason} address.")
        return Target(url, scheme, host, port, str(addresses[0]), path)


def blocked_reason(ip: IPAddress) -> str | None:
    """Why connecting to `ip` is refused, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return blocked_reason(embedded)
    for reason, network in _NAMED:
        if ip.version == network.version and ip in network:
            return reason
    checks = (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-public", not ip.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise UnsafeUrl(f"Not a valid URL: {url} ({exc}).") from exc
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"'{parts.scheme}:'" if parts.scheme else "no scheme"
        raise UnsafeUrl(f"Refused {url}: only http and https URLs can be fetched, not {shown}.")
    # "@" anywhere in the authority: user:password@host, or tricks like "good.com@evil.com".
    if "@" in parts.netloc:
        raise UnsafeUrl(f"Refused {url}: URLs with credentials (user@host) are not fetched.")
    return parts


def _host(parts: SplitResult, url: str) -> str:
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeUrl(f"Not a valid URL: {url} (no host).")
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise UnsafeUrl(f"Not a valid URL: {url} (bad host name).") from exc


def _port(parts: SplitResult, url: str) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Not a valid URL: {url} (bad port).") from exc
    return port or (443 if parts.scheme.lower() == "https" else 80)


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to; numeric spellings (2130706433, 0177.0.0.1) included."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ToolError(f"Could not resolve {host}: {exc}.") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # An IPv6 socket address may carry a zone ("fe80::1%eth0"); the zone is not the address.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ToolError(f"Could not resolve {host}: no addresses.")
    return addresses
