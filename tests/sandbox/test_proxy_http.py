"""The HTTP proxy: CONNECT tunnels, plain http:// requests, refusals, faults, upstream chaining."""

from __future__ import annotations

import base64
import os
import socket
import threading
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
    http_connect,
    recv_all,
    recv_head,
    reset_after_first_bytes,
    running,
    status_of,
    unresponsive_port,
    wait_until,
)

from fakes.web_server import Page, WebServer
from koda.sandbox.proxy import upstream_from_env

# --- through curl -------------------------------------------------------------------------------


def test_curl_fetches_through_a_connect_tunnel() -> None:
    resolver = RecordingResolver()
    with WebServer() as web, running(resolver=resolver) as proxies:
        web.pages["/hello"] = Page("hello through the tunnel")
        done = curl("-p", "-x", f"http://127.0.0.1:{proxies.http_port}", web.url("/hello", HOST))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello through the tunnel"
    assert resolver.calls == [(HOST, web.port)]
    assert web.requests[0].headers["host"] == f"{HOST}:{web.port}"


def test_curl_plain_request_is_forwarded_in_origin_form_without_proxy_headers() -> None:
    with WebServer() as web, running() as proxies:
        web.pages["/p"] = Page("plain")
        done = curl(
            "-x", f"http://127.0.0.1:{proxies.http_port}",
            "-U", "user:secret",  # curl sends it as Proxy-Authorization
            "-H", "X-Kept: yes",
            "-H", "Proxy-Connection: keep-alive",
            web.url("/p?q=1", HOST),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "plain"
    [request] = web.requests
    assert request.path == "/p?q=1"
    assert request.headers["x-kept"] == "yes"
    assert request.headers["connection"] == "close"
    assert request.headers["host"] == f"{HOST}:{web.port}"
    assert not [name for name in request.headers if name.startswith("proxy-")]


def test_curl_is_told_why_an_unlisted_host_is_refused() -> None:
    resolver = RecordingResolver()
    with running(resolver=resolver) as proxies:
        done = curl("-x", f"http://127.0.0.1:{proxies.http_port}", "http://example.com/")
    assert "example.com" in done.stdout
    assert "add it to [network] allow in .koda/koda.toml" in done.stdout
    assert resolver.calls == []


# --- refusals -----------------------------------------------------------------------------------


def test_connect_to_unlisted_host_is_refused_before_dns() -> None:
    resolver = RecordingResolver({HOST: "127.0.0.1", "evil.koda.test": "127.0.0.1"})
    with running(resolver=resolver) as proxies, connect(proxies.http_port) as sock:
        head = http_connect(sock, "evil.koda.test:443")
        body = recv_all(sock)
        refusals = proxies.refusals
    assert status_of(head) == 403
    assert b"evil.koda.test" in body
    assert b"add it to [network] allow in .koda/koda.toml" in body
    assert resolver.calls == []
    assert [(r.host, r.protocol) for r in refusals] == [("evil.koda.test", "http")]
    assert "allowlist" in refusals[0].reason


def test_plain_request_to_unlisted_host_is_refused_before_dns() -> None:
    resolver = RecordingResolver({"evil.koda.test": "127.0.0.1"})
    with running(resolver=resolver) as proxies, connect(proxies.http_port) as sock:
        sock.sendall(b"GET http://evil.koda.test/x HTTP/1.1\r\nHost: evil.koda.test\r\n\r\n")
        response = recv_all(sock)
    assert status_of(response) == 403
    assert b"evil.koda.test" in response
    assert resolver.calls == []


@pytest.mark.parametrize(
    "target", ["127.0.0.1:443", "[::1]:443", "127.1:443", "2130706433:443", "0x7f.1:443"]
)
def test_connect_to_ip_literal_is_refused(target: str) -> None:
    resolver = RecordingResolver()
    with running(resolver=resolver) as proxies, connect(proxies.http_port) as sock:
        head = http_connect(sock, target)
        body = recv_all(sock)
        refusals = proxies.refusals
    assert status_of(head) == 403
    assert b"IP address" in body
    assert resolver.calls == []
    assert refusals[0].reason.startswith("an IP address")


def test_host_names_with_a_trailing_dot_or_capitals_are_the_same_host() -> None:
    with TcpServer() as server, running() as proxies, connect(proxies.http_port) as sock:
        head = http_connect(sock, f"PKG.Koda.Test.:{server.port}")
        assert status_of(head) == 200
        assert echo_roundtrip(sock, b"ping") == b"ping"


# --- tunnels ------------------------------------------------------------------------------------


def test_connect_tunnel_relays_both_ways_and_passes_the_half_close() -> None:
    with TcpServer() as server, running() as proxies, connect(proxies.http_port) as sock:
        head = http_connect(sock, f"{HOST}:{server.port}")
        assert head.startswith(b"HTTP/1.1 200 ")
        # The echo server only finishes once it sees our end-of-file through the tunnel.
        assert echo_roundtrip(sock, b"first\n" * 1000) == b"first\n" * 1000


def test_bytes_sent_with_the_connect_request_are_not_lost() -> None:
    with TcpServer() as server, running() as proxies, connect(proxies.http_port) as sock:
        head = http_connect(sock, f"{HOST}:{server.port}", early=b"early bytes")
        assert status_of(head) == 200
        assert echo_roundtrip(sock, b" and more") == b"early bytes and more"


def test_a_large_transfer_arrives_intact_in_both_directions() -> None:
    payload = os.urandom(16 * 1024 * 1024)
    received: list[bytes] = []
    with TcpServer() as server, running() as proxies, connect(proxies.http_port) as sock:
        assert status_of(http_connect(sock, f"{HOST}:{server.port}")) == 200
        reader = threading.Thread(target=lambda: received.append(recv_all(sock)))
        reader.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reader.join()
    assert received == [payload]


def test_the_unix_socket_serves_the_same_protocol(tmp_path: Path) -> None:
    with TcpServer() as server, running(socket_dir=tmp_path / "s") as proxies:
        assert proxies.http_socket is not None
        with connect_unix(proxies.http_socket) as sock:
            assert status_of(http_connect(sock, f"{HOST}:{server.port}")) == 200
            assert echo_roundtrip(sock, b"over unix") == b"over unix"
        with connect_unix(proxies.http_socket) as sock:
            assert status_of(http_connect(sock, "evil.koda.test:443")) == 403


def test_default_resolver_reaches_localhost() -> None:
    # `localhost` may resolve to ::1 first; the proxy tries every address in turn.
    with (
        TcpServer() as server,
        running(["localhost"], system_dns=True) as proxies,
        connect(proxies.http_port) as sock,
    ):
        assert status_of(http_connect(sock, f"localhost:{server.port}")) == 200
        assert echo_roundtrip(sock, b"via getaddrinfo") == b"via getaddrinfo"


def test_plain_request_body_is_forwarded_by_content_length() -> None:
    with WebServer() as web, running() as proxies, connect(proxies.http_port) as sock:
        web.pages["/post"] = Page("posted")
        body = b"a=1&b=2"
        sock.sendall(
            f"POST {web.url('/post', HOST)} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
            + b"GET http://evil.koda.test/ HTTP/1.1\r\n\r\n"  # never read: one request only
        )
        response = recv_all(sock)
    assert status_of(response) == 200
    assert response.endswith(b"posted")
    [request] = web.requests
    assert request.body == body
    assert request.headers["host"] == f"{HOST}:{web.port}"


# --- bad requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: pkg.koda.test\r\n\r\n",  # origin form: not a proxy request
        b"GET https://pkg.koda.test/ HTTP/1.1\r\n\r\n",
        b"GET ftp://pkg.koda.test/ HTTP/1.1\r\n\r\n",
        b"GET http://user:pw@pkg.koda.test/ HTTP/1.1\r\n\r\n",
        b"CONNECT pkg.koda.test HTTP/1.1\r\n\r\n",  # no port
        b"CONNECT pkg.koda.test:99999 HTTP/1.1\r\n\r\n",
        b"CONNECT pkg.koda.test:0 HTTP/1.1\r\n\r\n",
        b"CONNECT ::1:443 HTTP/1.1\r\n\r\n",
        b"CONNECT pkg.koda.test:443 HTTP/2.0\r\n\r\n",
        b"CONNECT  pkg.koda.test:443 HTTP/1.1\r\n\r\n",
        b"CONNECT pkg.koda.test:443 HTTP/1.1\r\nno colon here\r\n\r\n",
        b"CONNECT pkg.koda.test:443 HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        b"GET http://pkg.koda.test/ HTTP/1.1\r\nX: a\nGET http://evil/ HTTP/1.1\r\n\r\n",
        b"GET http://pkg.koda.test/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
)
def test_malformed_request_is_answered_400_without_dns(request_bytes: bytes) -> None:
    resolver = RecordingResolver()
    with running(resolver=resolver) as proxies, connect(proxies.http_port) as sock:
        sock.sendall(request_bytes)
        response = recv_all(sock)
    assert status_of(response) == 400
    assert response.split(b"\r\n\r\n", 1)[1].strip()  # a reason is given
    assert resolver.calls == []


def test_https_absolute_form_is_told_to_use_connect() -> None:
    with running() as proxies, connect(proxies.http_port) as sock:
        sock.sendall(b"GET https://pkg.koda.test/ HTTP/1.1\r\n\r\n")
        response = recv_all(sock)
    assert status_of(response) == 400
    assert b"CONNECT" in response.split(b"\r\n\r\n", 1)[1]


def test_chunked_plain_request_is_refused_with_411() -> None:
    with running() as proxies, connect(proxies.http_port) as sock:
        sock.sendall(
            b"POST http://pkg.koda.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        assert status_of(recv_all(sock)) == 411


def test_huge_request_head_is_refused_with_431() -> None:
    with running() as proxies, connect(proxies.http_port) as sock:
        sock.sendall(b"CONNECT pkg.koda.test:443 HTTP/1.1\r\n")
        filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        for _ in range(80):
            sock.sendall(filler)
        sock.shutdown(socket.SHUT_WR)
        response = recv_all(sock)
        assert status_of(response) == 431
        wait_until(lambda: proxies.active_connections == 0, "the connection is closed")


# --- faults -------------------------------------------------------------------------------------


def test_refused_port_is_answered_502() -> None:
    with running() as proxies, connect(proxies.http_port) as sock:
        head = http_connect(sock, f"{HOST}:{closed_port()}")
        body = recv_all(sock)
    assert status_of(head) == 502
    assert b"refused" in body


def test_unresolvable_allowed_host_is_answered_502() -> None:
    resolver = RecordingResolver({})
    with running(resolver=resolver) as proxies, connect(proxies.http_port) as sock:
        head = http_connect(sock, f"{HOST}:443")
        body = recv_all(sock)
    assert status_of(head) == 502
    assert b"cannot resolve pkg.koda.test" in body
    assert resolver.calls == [(HOST, 443)]


def test_connect_timeout_is_answered_504() -> None:
    with (
        unresponsive_port() as port,
        running(connect_timeout=0.3) as proxies,
        connect(proxies.http_port) as sock,
    ):
        head = http_connect(sock, f"{HOST}:{port}")
        body = recv_all(sock)
    assert status_of(head) == 504
    assert b"within 0.3 s" in body


def test_silent_client_is_dropped_after_the_handshake_timeout() -> None:
    with running(handshake_timeout=0.3) as proxies, connect(proxies.http_port) as sock:
        assert recv_all(sock) == b""  # closed by the proxy, no answer
        wait_until(lambda: proxies.active_connections == 0, "the connection is forgotten")


def test_client_that_disconnects_mid_request_leaves_nothing_open() -> None:
    with running() as proxies:
        for partial in (b"CONNECT pkg.ko", b"GET http://pkg.koda.test/ HTTP/1.1\r\nHost:", b""):
            with connect(proxies.http_port) as sock:
                sock.sendall(partial)
        wait_until(lambda: proxies.active_connections == 0, "every connection is closed")
        with connect(proxies.http_port) as sock:
            assert status_of(http_connect(sock, "evil.koda.test:1")) == 403


def test_upstream_reset_mid_tunnel_ends_that_tunnel_only() -> None:
    with (
        TcpServer(reset_after_first_bytes) as resetting,
        TcpServer() as echoing,
        running() as proxies,
    ):
        with connect(proxies.http_port) as sock:
            assert status_of(http_connect(sock, f"{HOST}:{resetting.port}")) == 200
            sock.sendall(b"hello")
            assert recv_all(sock) == b""
        wait_until(lambda: proxies.active_connections == 0, "the broken tunnel is closed")
        with connect(proxies.http_port) as sock:
            assert status_of(http_connect(sock, f"{HOST}:{echoing.port}")) == 200
            assert echo_roundtrip(sock, b"still fine") == b"still fine"


def test_client_reset_mid_tunnel_closes_the_server_side() -> None:
    with TcpServer() as server, running() as proxies:
        sock = connect(proxies.http_port)
        assert status_of(http_connect(sock, f"{HOST}:{server.port}")) == 200
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        assert server.closed.wait(10)
        wait_until(lambda: proxies.active_connections == 0, "the tunnel is closed")


# --- upstream chaining --------------------------------------------------------------------------


def test_connect_is_chained_through_the_upstream_proxy() -> None:
    outer = RecordingResolver()
    inner = RecordingResolver()
    with TcpServer() as server, running(resolver=outer) as corporate:
        upstream = f"http://127.0.0.1:{corporate.http_port}"
        with (
            running(resolver=inner, upstream=upstream) as proxies,
            connect(proxies.http_port) as sock,
        ):
            assert status_of(http_connect(sock, f"{HOST}:{server.port}")) == 200
            assert echo_roundtrip(sock, b"chained") == b"chained"
    assert inner.calls == []  # the upstream resolves, not us
    assert outer.calls == [(HOST, server.port)]


def test_upstream_refusal_is_answered_502_with_its_answer() -> None:
    with running(["other.koda.test"]) as corporate:
        upstream = f"http://127.0.0.1:{corporate.http_port}"
        with running(upstream=upstream) as proxies, connect(proxies.http_port) as sock:
            head = http_connect(sock, f"{HOST}:443")
            body = recv_all(sock)
    assert status_of(head) == 502
    assert b"403 Forbidden" in body
    assert f"127.0.0.1:{corporate.http_port}".encode() in body


def test_unlisted_host_is_refused_before_reaching_the_upstream() -> None:
    with (
        TcpServer() as upstream_server,
        running(upstream=f"http://127.0.0.1:{upstream_server.port}") as proxies,
        connect(proxies.http_port) as sock,
    ):
        assert status_of(http_connect(sock, "evil.koda.test:443")) == 403
    assert upstream_server.accepted == 0


def test_plain_request_goes_to_the_upstream_in_absolute_form() -> None:
    outer = RecordingResolver()
    with WebServer() as web, running(resolver=outer) as corporate:
        web.pages["/via"] = Page("via the upstream")
        upstream = f"http://127.0.0.1:{corporate.http_port}"
        with running(upstream=upstream) as proxies:
            done = curl("-x", f"http://127.0.0.1:{proxies.http_port}", web.url("/via?x=1", HOST))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "via the upstream"
    # The corporate proxy (our own, here) only takes absolute form or CONNECT, and it resolved.
    assert outer.calls == [(HOST, web.port)]
    assert web.requests[0].path == "/via?x=1"


def test_upstream_credentials_are_sent_as_proxy_authorization() -> None:
    heads: list[bytes] = []

    def fake_upstream(conn: socket.socket) -> None:
        heads.append(recv_head(conn))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        while data := conn.recv(65536):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)

    with TcpServer(fake_upstream) as upstream_server:
        upstream = f"http://us%40er:pa%20ss@127.0.0.1:{upstream_server.port}"
        with running(upstream=upstream) as proxies, connect(proxies.http_port) as sock:
            assert status_of(http_connect(sock, f"{HOST}:443")) == 200
            assert echo_roundtrip(sock, b"tunnelled") == b"tunnelled"
    token = base64.b64encode(b"us@er:pa ss").decode()
    assert heads[0].startswith(b"CONNECT pkg.koda.test:443 HTTP/1.1\r\n")
    assert f"Proxy-Authorization: Basic {token}\r\n".encode() in heads[0]


def test_unreachable_upstream_is_answered_502() -> None:
    port = closed_port()
    with running(upstream=f"http://127.0.0.1:{port}") as proxies, connect(proxies.http_port) as s:
        head = http_connect(s, f"{HOST}:443")
        body = recv_all(s)
    assert status_of(head) == 502
    assert f"cannot reach the upstream proxy 127.0.0.1:{port}".encode() in body


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"HTTPS_PROXY": "http://corp:3128"}, "http://corp:3128"),
        ({"https_proxy": "http://lower:1", "HTTP_PROXY": "http://plain:2"}, "http://lower:1"),
        ({"HTTPS_PROXY": "http://a:1", "https_proxy": "http://b:2"}, "http://a:1"),
        ({"http_proxy": "http://last:4"}, "http://last:4"),
        ({"HTTPS_PROXY": "corp.example:3128"}, "corp.example:3128"),  # no scheme: http
        ({"HTTPS_PROXY": "https://tls:443", "HTTP_PROXY": "http://plain:80"}, "http://plain:80"),
        ({"HTTPS_PROXY": "socks5://s:1080"}, None),
        ({"HTTPS_PROXY": "  ", "http_proxy": "http://x:1"}, "http://x:1"),
        ({"ALL_PROXY": "http://all:1"}, None),
    ],
)
def test_upstream_from_env_takes_the_first_http_proxy(
    env: dict[str, str], expected: str | None
) -> None:
    assert upstream_from_env(env) == expected
