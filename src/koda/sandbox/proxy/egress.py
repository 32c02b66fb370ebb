"""The decision both proxies make for every destination, and what they share to act on it."""

from __future__ import annotations

from dataclasses import dataclass

from koda.sandbox.allowlist import Allowlist, is_ip_literal
from koda.sandbox.proxy.dial import Dialer
from koda.sandbox.proxy.refusals import Protocol, Refusal, RefusalLog

NOT_LISTED = "not on the network allowlist"
IP_LITERAL = "an IP address; egress is allowed by host name only"
HOW_TO_ALLOW = "add it to [network] allow in .koda/koda.toml"


@dataclass(frozen=True)
class Egress:
    allowlist: Allowlist
    dialer: Dialer
    refusals: RefusalLog
    handshake_timeout: float

    def refusal(self, host: str, protocol: Protocol) -> str | None:
        """Why `host` (a bare name, no port) is refused, recorded; None when it is allowed."""
        if ":" not in host and self.allowlist.allows(host):
            return None
        reason = IP_LITERAL if is_ip_literal(host) else NOT_LISTED
        self.refusals.add(Refusal(shown_host(host), protocol, reason))
        return reason


def shown_host(host: str) -> str:
    """The host as it may be echoed in a message: printable and of bounded length."""
    text = host if host.isprintable() and host.isascii() else ascii(host)[1:-1]
    return text if len(text) <= 260 else text[:256] + "..."


def refusal_message(host: str, reason: str) -> str:
    message = f"Koda's network sandbox refused {shown_host(host)}: it is {reason}."
    if reason == NOT_LISTED:
        message += f" To allow it, {HOW_TO_ALLOW}."
    return message + "\n"
