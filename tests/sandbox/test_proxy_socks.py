"""The SOCKS5 proxy: curl through socks5h://, the RFC 1928 edges, refusals and faults."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from proxy_helpers import (
    HOST,
    RecordingResolver,
    TcpServer,
    closed_port,
    connect,
    connect_unix,
    curl,
    echo_roundtrip,
    recv_all,
    recv_exactly,
    reset_after_first_bytes,
    running,
    socks_domain,
    socks_request,
    unresponsive_port,
    wait_until,
)

from fakes.web_server import Page, WebServer

SUCCEEDED, GENERAL_FAILURE, NOT_ALLOWED, HOST_UNREACHABLE, REFUSED = 0, 1, 2, 4, 5
COMMAND_NOT_SUPPORTED, ADDRESS_TYPE_NOT_SUPPORTED = 7, 8


@pytest.mark.parametrize(
    "form", ["-x socks5h://127.0.0.1:{port}", "--socks5-hostname 127.0.0.1:{port}"]
)
def test_curl_fetches_through_socks5h(form: str) -> None:
    resolver = RecordingResolver()
    with WebServer() as web, running(resolver=resolver) as proxies:
        web.pages["/s"] = Page("through socks")
        done = curl(*form.format(port=proxies.socks_port).split(), web.url("/s", HOST))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "through socks"
    assert resolver.calls == [(HOST, web.port)]  # the name reached the proxy, not an address


def test_curl_to_an_unlisted_host_through_socks_is_refused_without_dns() -> None:
    resolver = RecordingResolver({"evil.koda.test": "127.0.0.1"})
    with running(resolver=resolver) as proxies:
        done = curl("-x", f"socks5h://127.0.0.1:{proxies.socks_port}", "http://evil.koda.test/")
        refusals = proxies.refusals
    assert done.returncode != 0
    assert resolver.calls == []
    assert [(r.host, r.protocol) for r in refusals] == [("evil.koda.test", "socks")]


def test_socks_tunnel_relays_both_ways_and_passes_the_half_close() -> None:
    with TcpServer() as server, running() as proxies, connect(proxies.socks_port) as sock:
        assert socks_domain(sock, HOST, server.port) == SUCCEEDED
        assert echo_roundtrip(sock, b"socks data\n" * 5000) == b"socks data\n" * 5000


def test_socks_success_reply_binds_zero_address() -> None:
    with TcpServer() as server, running() as proxies, connect(proxies.socks_port) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert recv_exactly(sock, 2) == b"\x05\x00"
        name = HOST.encode()
        sock.sendall(b"\x05\x01\x00\x03" + bytes((len(name),)) + name + server.port.to_bytes(2))
        assert recv_exactly(sock, 10) == b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00"


def test_socks_ipv4_address_type_is_refused() -> None:
    resolver = RecordingResolver()
    with TcpServer() as server, running(resolver=resolver) as proxies:
        with connect(proxies.socks_port) as sock:
            code = socks_request(sock, 1, socket.inet_aton("127.0.0.1"), server.port)
        refusals = proxies.refusals
    assert code == NOT_ALLOWED
    assert server.accepted == 0
    assert resolver.calls == []
    assert [(r.host, r.protocol) for r in refusals] == [("127.0.0.1", "socks")]
    assert "IP address" in refusals[0].reason


def test_socks_ipv6_address_type_is_refused() -> None:
    with running() as proxies, connect(proxies.socks_port) as sock:
        code = socks_request(sock, 4, ipaddress.IPv6Address("::1").packed, 443)
        refusals = proxies.refusals
    assert code == NOT_ALLOWED
    assert refusals[0].host == "::1"


@pytest.mark.parametrize("literal", ["127.0.0.1", "127.1", "2130706433", "::1", "[::1]"])
def test_socks_domain_that_is_an_ip_literal_is_refused(literal: str) -> None:
    resolver = RecordingResolver()
    with TcpServer() as server, running(resolver=resolver) as proxies:
        with connect(proxies.socks_port) as sock:
            assert socks_domain(sock, literal, server.port) == NOT_ALLOWED
        assert proxies.refusals[0].reason.startswith("an IP address")
    assert resolver.calls == []
    assert server.accepted == 0


@pytest.mark.parametrize("name", ["evil.koda.test", "", "pkg.koda.test:80", "pkg.koda.tes\xe9"])
def test_socks_domain_not_on_the_allowlist_is_refused_before_dns(name: str) -> None:
    resolver = RecordingResolver()
    with running(resolver=resolver) as proxies, connect(proxies.socks_port) as sock:
        assert socks_domain(sock, name, 443) == NOT_ALLOWED
    assert resolver.calls == []


def test_socks_offers_no_authentication_only() -> None:
    with running() as proxies, connect(proxies.socks_port) as sock:
        sock.sendall(b"\x05\x02\x01\x02")  # GSSAPI and username/password only
        assert recv_exactly(sock, 2) == b"\x05\xff"
        assert recv_all(sock) == b""


def test_socks_picks_no_auth_among_other_methods() -> None:
    with running() as proxies, connect(proxies.socks_port) as sock:
        sock.sendall(b"\x05\x03\x02\x01\x00")
        assert recv_exactly(sock, 2) == b"\x05\x00"


@pytest.mark.parametrize(("command", "name"), [(2, "BIND"), (3, "UDP ASSOCIATE")])
def test_socks_bind_and_udp_associate_are_not_supported(command: int, name: str) -> None:
    with running() as proxies, connect(proxies.socks_port) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert recv_exactly(sock, 2) == b"\x05\x00"
        sock.sendall(bytes((5, command, 0, 3, len(HOST))) + HOST.encode() + b"\x01\xbb")
        assert recv_exactly(sock, 10)[1] == COMMAND_NOT_SUPPORTED, name


def test_socks_unknown_address_type_is_not_supported() -> None:
    with running() as proxies, connect(proxies.socks_port) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert recv_exactly(sock, 2) == b"\x05\x00"
        sock.sendall(b"\x05\x01\x00\x09")
        assert recv_exactly(sock, 10)[1] == ADDRESS_TYPE_NOT_SUPPORTED


@pytest.mark.parametrize(
    "garbage", [b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b"GET / HTTP/1.1\r\n\r\n", b"\x05"]
)
def test_socks_garbage_or_socks4_is_closed_without_harm(garbage: bytes) -> None:
    with running() as proxies:
        with connect(proxies.socks_port) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b""
        wait_until(lambda: proxies.active_connections == 0, "the connection is closed")
        with TcpServer() as server, connect(proxies.socks_port) as sock:
            assert socks_domain(sock, HOST, server.port) == SUCCEEDED


def test_socks_refused_port_replies_connection_refused() -> None:
    with running() as proxies, connect(proxies.socks_port) as sock:
        assert socks_domain(sock, HOST, closed_port()) == REFUSED


def test_socks_unresolvable_host_replies_host_unreachable() -> None:
    with running(resolver=RecordingResolver({})) as proxies, connect(proxies.socks_port) as sock:
        assert socks_domain(sock, HOST, 443) == HOST_UNREACHABLE


def test_socks_connect_timeout_replies_host_unreachable() -> None:
    with (
        unresponsive_port() as port,
        running(connect_timeout=0.3) as proxies,
        connect(proxies.socks_port) as sock,
    ):
        assert socks_domain(sock, HOST, port) == HOST_UNREACHABLE


def test_socks_silent_client_is_dropped_after_the_handshake_timeout() -> None:
    with running(handshake_timeout=0.3) as proxies, connect(proxies.socks_port) as sock:
        sock.sendall(b"\x05\x01\x00")
        assert recv_exactly(sock, 2) == b"\x05\x00"
        assert recv_all(sock) == b""
        wait_until(lambda: proxies.active_connections == 0, "the connection is forgotten")


def test_socks_client_vanishing_mid_handshake_leaves_nothing_open() -> None:
    with running() as proxies:
        for partial in (b"", b"\x05", b"\x05\x01\x00\x05\x01\x00\x03\x0dpkg.ko"):
            with connect(proxies.socks_port) as sock:
                sock.sendall(partial)
        wait_until(lambda: proxies.active_connections == 0, "every connection is closed")


def test_socks_upstream_reset_mid_tunnel_ends_that_tunnel_only() -> None:
    with TcpServer(reset_after_first_bytes) as resetting, running() as proxies:
        with connect(proxies.socks_port) as sock:
            assert socks_domain(sock, HOST, resetting.port) == SUCCEEDED
            sock.sendall(b"hello")
            assert recv_all(sock) == b""
        wait_until(lambda: proxies.active_connections == 0, "the broken tunnel is closed")
        with TcpServer() as server, connect(proxies.socks_port) as sock:
            assert socks_domain(sock, HOST, server.port) == SUCCEEDED
            assert echo_roundtrip(sock, b"ok") == b"ok"


def test_socks_over_the_unix_socket(tmp_path: Path) -> None:
    with TcpServer() as server, running(socket_dir=tmp_path) as proxies:
        assert proxies.socks_socket == tmp_path / "socks.sock"
        with connect_unix(proxies.socks_socket) as sock:
            assert socks_domain(sock, HOST, server.port) == SUCCEEDED
            assert echo_roundtrip(sock, b"unix socks") == b"unix socks"


def test_socks_connect_is_chained_through_the_upstream_proxy() -> None:
    outer = RecordingResolver()
    inner = RecordingResolver()
    with TcpServer() as server, running(resolver=outer) as corporate:
        upstream = f"http://127.0.0.1:{corporate.http_port}"
        with (
            running(resolver=inner, upstream=upstream) as proxies,
            connect(proxies.socks_port) as sock,
        ):
            assert socks_domain(sock, HOST, server.port) == SUCCEEDED
            assert echo_roundtrip(sock, b"socks, chained") == b"socks, chained"
    assert inner.calls == []
    assert outer.calls == [(HOST, server.port)]


def test_socks_upstream_refusal_is_a_general_failure() -> None:
    with running(["other.koda.test"]) as corporate:
        upstream = f"http://127.0.0.1:{corporate.http_port}"
        with running(upstream=upstream) as proxies, connect(proxies.socks_port) as sock:
            assert socks_domain(sock, HOST, 443) == GENERAL_FAILURE
