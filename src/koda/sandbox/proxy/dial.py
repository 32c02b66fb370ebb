"""Opening the outbound connection for an allowed host: directly, or through an upstream proxy.

Only hosts the allowlist passed ever get here, so this is the only place a name is resolved.
Resolving and connecting share one deadline; every failure becomes a DialError whose kind each
protocol maps to its own answer (502/504, SOCKS reply codes).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Literal

from koda.sandbox.proxy.relay import CHUNK, Conn
from koda.sandbox.proxy.upstream import Upstream, UpstreamError, open_upstream, tunnel_via

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> the IP addresses to try, in order."""

DialFailure = Literal["resolve", "refused", "unreachable", "timeout", "upstream"]


class DialError(Exception):
    def __init__(self, kind: DialFailure, message: str) -> None:
        super().__init__(message)
        self.kind: DialFailure = kind


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Dialer:
    def __init__(self, resolve: Resolver, upstream: Upstream | None, timeout: float) -> None:
        self.resolve = resolve
        self.upstream = upstream
        self.timeout = timeout

    async def tunnel(self, host: str, port: int) -> Conn:
        """A byte stream to host:port (through the upstream's CONNECT when there is one)."""
        upstream = self.upstream
        return await self._within_deadline(
            f"{host}:{port}",
            self._direct(host, port) if upstream is None else _via(upstream, host, port),
        )

    async def forwarder(self, host: str, port: int) -> Conn:
        """Where a plain http:// request goes: the upstream proxy itself, else the origin."""
        if self.upstream is None:
            return await self._within_deadline(f"{host}:{port}", self._direct(host, port))
        return await self._within_deadline(self.upstream.authority, _upstream_conn(self.upstream))

    async def _within_deadline(self, target: str, dial: Awaitable[Conn]) -> Conn:
        try:
            async with asyncio.timeout(self.timeout):
                return await dial
        except TimeoutError:
            raise DialError(
                "timeout", f"no connection to {target} within {self.timeout:g} s"
            ) from None

    async def _direct(self, host: str, port: int) -> Conn:
        try:
            addresses = await self.resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise DialError("resolve", f"cannot resolve {host}: {_reason(exc)}") from None
        if not addresses:
            raise DialError("resolve", f"cannot resolve {host}: no address")
        failure = DialError("unreachable", f"cannot connect to {host}:{port}")
        for address in addresses:
            try:
                reader, writer = await asyncio.open_connection(address, port, limit=CHUNK)
                return Conn(reader, writer)
            except ConnectionRefusedError:
                failure = DialError("refused", f"{host}:{port} refused the connection")
            except TimeoutError as exc:
                failure = DialError("timeout", f"cannot connect to {host}:{port}: {_reason(exc)}")
            except OSError as exc:
                failure = DialError(
                    "unreachable", f"cannot connect to {host}:{port}: {_reason(exc)}"
                )
        raise failure


async def _via(upstream: Upstream, host: str, port: int) -> Conn:
    try:
        return await tunnel_via(upstream, host, port)
    except UpstreamError as exc:
        raise DialError("upstream", str(exc)) from None


async def _upstream_conn(upstream: Upstream) -> Conn:
    try:
        return await open_upstream(upstream)
    except UpstreamError as exc:
        raise DialError("upstream", str(exc)) from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
