"""The SOCKS5 proxy (RFC 1928), for raw-TCP clients: no authentication, CONNECT only.

Only the domain-name address type is served, so the allowlist always sees a host name: IPv4
and IPv6 address types, and domain names that are IP literals, are refused as the ruleset's
decision (reply 0x02). Clients are told to use it as socks5h://, which sends names.
"""

from __future__ import annotations

import asyncio
import ipaddress

from koda.sandbox.proxy.dial import DialError, DialFailure
from koda.sandbox.proxy.egress import IP_LITERAL, Egress
from koda.sandbox.proxy.refusals import Refusal
from koda.sandbox.proxy.relay import Conn, relay

VERSION = 5
NO_AUTH = 0
NO_ACCEPTABLE_METHOD = 0xFF
CMD_CONNECT = 1
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4

SUCCEEDED = 0
GENERAL_FAILURE = 1
NOT_ALLOWED = 2
NETWORK_UNREACHABLE = 3
HOST_UNREACHABLE = 4
CONNECTION_REFUSED = 5
COMMAND_NOT_SUPPORTED = 7
ADDRESS_TYPE_NOT_SUPPORTED = 8

_REPLY_FOR: dict[DialFailure, int] = {
    "resolve": HOST_UNREACHABLE,
    "timeout": HOST_UNREACHABLE,
    "unreachable": NETWORK_UNREACHABLE,
    "refused": CONNECTION_REFUSED,
    "upstream": GENERAL_FAILURE,
}


async def serve_socks(egress: Egress, client: Conn) -> None:
    try:
        async with asyncio.timeout(egress.handshake_timeout):
            target = await _negotiate(egress, client)
    except (TimeoutError, asyncio.IncompleteReadError):
        return
    if target is None:
        return
    try:
        server = await egress.dialer.tunnel(*target)
    except DialError as exc:
        await _reply(client, _REPLY_FOR[exc.kind])
        return
    await _reply(client, SUCCEEDED)
    await relay(client, server)


async def _negotiate(egress: Egress, client: Conn) -> tuple[str, int] | None:
    """The allowed (host, port) to connect to, or None once the refusal has been sent."""
    reader, writer = client.reader, client.writer
    version, count = await reader.readexactly(2)
    if version != VERSION:
        return None  # not SOCKS5: there is no way to answer
    methods = await reader.readexactly(count)
    if NO_AUTH not in methods:
        writer.write(bytes((VERSION, NO_ACCEPTABLE_METHOD)))
        await writer.drain()
        return None
    writer.write(bytes((VERSION, NO_AUTH)))
    version, command, _reserved, address_type = await reader.readexactly(4)
    if version != VERSION:
        await _reply(client, GENERAL_FAILURE)
        return None
    if command != CMD_CONNECT:
        await _reply(client, COMMAND_NOT_SUPPORTED)
        return None
    if address_type in (ATYP_IPV4, ATYP_IPV6):
        packed = await reader.readexactly(4 if address_type == ATYP_IPV4 else 16)
        await reader.readexactly(2)
        address = str(ipaddress.ip_address(packed))
        egress.refusals.add(Refusal(address, "socks", IP_LITERAL))
        await _reply(client, NOT_ALLOWED)
        return None
    if address_type != ATYP_DOMAIN:
        await _reply(client, ADDRESS_TYPE_NOT_SUPPORTED)
        return None
    name = await reader.readexactly((await reader.readexactly(1))[0])
    port = int.from_bytes(await reader.readexactly(2), "big")
    host = name.decode("utf-8", errors="replace")
    if egress.refusal(host, "socks") is not None:
        await _reply(client, NOT_ALLOWED)
        return None
    return host, port


async def _reply(client: Conn, code: int) -> None:
    # BND.ADDR 0.0.0.0:0: clients of a CONNECT never need the proxy's outbound address.
    client.writer.write(bytes((VERSION, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0)))
    await client.writer.drain()
