"""Which host names sandboxed commands may reach through the egress proxies.

Egress is decided by host name only, before any DNS lookup: a pattern is an exact host or
`*.` followed by a domain of at least two labels, matching exactly one more label (RFC 6125
style). IP literals never match, in any of the forms a resolver would accept (`127.1`,
`0x7f.1`, `2130706433`, bracketed IPv6), so an address cannot be smuggled past a name rule.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

DEFAULT_DEV_ALLOWLIST: tuple[str, ...] = (
    "github.com",
    "*.githubusercontent.com",
    "api.github.com",
    "codeload.github.com",
    "*.npmjs.org",
    "registry.npmjs.org",
    "*.pypi.org",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "static.crates.io",
    "index.crates.io",
    "*.docker.io",
    "registry-1.docker.io",
    "auth.docker.io",
)

MAX_HOST_LENGTH = 253
# Letters, digits, hyphens (not first or last), and underscores, which some real DNS names use.
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_ALLOWED = "an exact host name (github.com) or *. and a domain of two labels or more (*.npmjs.org)"


class PatternError(ValueError):
    """An allowlist entry that is not a host name pattern."""


def is_ip_literal(host: str) -> bool:
    """True for anything a connect() would take as an address rather than a name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not text:
        return False
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    # inet_aton takes the legacy forms too: 127.1, 0x7f.0.0.1, 017700000001, 2130706433.
    try:
        socket.inet_aton(text)
    except (OSError, ValueError):
        return False
    return True


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _is_host_name(host: str) -> bool:
    if not host or len(host) > MAX_HOST_LENGTH or not host.isascii():
        return False
    return all(_LABEL.fullmatch(label) for label in host.split("."))


def check_pattern(text: str) -> str:
    """The pattern, lower-cased and without a trailing dot; PatternError says what is wrong."""
    pattern = text.lower()
    if pattern.endswith(".") and not pattern.endswith(".."):
        pattern = pattern[:-1]
    problem = _pattern_problem(pattern)
    if problem:
        raise PatternError(f"invalid network allow entry {text!r}: {problem} (use {_ALLOWED})")
    return pattern


def _pattern_problem(pattern: str) -> str:
    if not pattern:
        return "it is empty"
    if "://" in pattern:
        return "it is a URL; give the host name without the scheme"
    if any(ch.isspace() for ch in pattern):
        return "it contains white space"
    if is_ip_literal(pattern) or _is_network(pattern):
        return "it is an IP address; egress is allowed by host name only"
    if "/" in pattern:
        return "it has a path; give the host name only"
    if ":" in pattern:
        return "it has a port; every port of an allowed host is allowed"
    if pattern == "*":
        return "a lone * would allow every host"
    wildcard = pattern.startswith("*.")
    domain = pattern[2:] if wildcard else pattern
    if "*" in domain:
        return "* may only stand alone as the first label, as in *.example.com"
    if not domain.isascii():
        return "it is not ASCII; give an internationalized name in its xn-- form"
    if not _is_host_name(domain):
        return "it is not a valid host name"
    if wildcard and domain.count(".") < 1:
        return "a wildcard needs at least two labels after it (*.example.com, not *.com)"
    return ""


def _host_part(host: str) -> str | None:
    """The host without `:port` and a trailing dot, lower-cased; None when it cannot be one."""
    text = host.lower()
    if text.count(":") == 1:
        text, port = text.split(":")
        if not port.isdigit():
            return None
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    return text


class Allowlist:
    """A validated set of host name patterns; empty means every host is refused."""

    def __init__(self, patterns: Iterable[str]) -> None:
        if isinstance(patterns, str):
            raise TypeError("Allowlist takes a list of patterns, not one string")
        checked = [check_pattern(p) for p in patterns]
        self.patterns: tuple[str, ...] = tuple(dict.fromkeys(checked))
        self._exact = frozenset(p for p in self.patterns if not p.startswith("*."))
        self._parents = frozenset(p[2:] for p in self.patterns if p.startswith("*."))

    @classmethod
    def default(cls, extra: Iterable[str] = ()) -> Allowlist:
        """The developer defaults (code hosts and package registries) plus `extra`."""
        return cls([*DEFAULT_DEV_ALLOWLIST, *extra])

    def allows(self, host: str) -> bool:
        name = _host_part(host)
        if name is None or is_ip_literal(name) or not _is_host_name(name):
            return False
        if name in self._exact:
            return True
        _, dot, parent = name.partition(".")
        return bool(dot) and parent in self._parents

    def __repr__(self) -> str:
        return f"Allowlist({list(self.patterns)!r})"
