"""The session's egress proxies: HTTP (CONNECT and plain http://) and SOCKS5, one allowlist."""

from koda.sandbox.proxy.dial import Resolver
from koda.sandbox.proxy.refusals import Refusal
from koda.sandbox.proxy.server import EgressProxies, ProxyStartError
from koda.sandbox.proxy.upstream import upstream_from_env

__all__ = ["EgressProxies", "ProxyStartError", "Refusal", "Resolver", "upstream_from_env"]
