"""Starting and stopping the egress proxies: ports, sockets, env, the thread, open tunnels."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import stat
import threading
import warnings
from pathlib import Path

import pytest
from proxy_helpers import (
    HOST,
    TcpServer,
    connect,
    connect_unix,
    echo_roundtrip,
    http_connect,
    recv_all,
    running,
    socks_domain,
    status_of,
    wait_until,
)

from koda.sandbox.allowlist import Allowlist
from koda.sandbox.proxy import EgressProxies, ProxyStartError


def egress_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("koda-egress")]


def test_start_listens_on_loopback_and_env_points_at_both_proxies() -> None:
    with running() as proxies:
        http, socks = proxies.http_port, proxies.socks_port
        assert http > 0 and socks > 0 and http != socks
        assert proxies.env() == {
            "HTTPS_PROXY": f"http://127.0.0.1:{http}",
            "https_proxy": f"http://127.0.0.1:{http}",
            "HTTP_PROXY": f"http://127.0.0.1:{http}",
            "http_proxy": f"http://127.0.0.1:{http}",
            "ALL_PROXY": f"socks5h://127.0.0.1:{socks}",
            "all_proxy": f"socks5h://127.0.0.1:{socks}",
            "NO_PROXY": "localhost,127.0.0.1,::1",
            "no_proxy": "localhost,127.0.0.1,::1",
            "KODA_PROXY_PORT": str(http),
        }
        for port in (http, socks):
            with connect(port) as sock:
                assert sock.getpeername()[0] == "127.0.0.1"
        assert proxies.http_socket is None and proxies.socks_socket is None


def test_env_before_start_and_after_stop_is_an_error() -> None:
    proxies = EgressProxies(Allowlist([HOST]))
    with pytest.raises(RuntimeError, match="not running"):
        proxies.env()
    proxies.start()
    proxies.stop()
    with pytest.raises(RuntimeError, match="not running"):
        proxies.env()


def test_proxies_run_in_one_named_daemon_thread_that_stop_ends() -> None:
    assert egress_threads() == []
    proxies = EgressProxies(Allowlist([HOST]))
    proxies.start()
    [thread] = egress_threads()
    assert thread.name == "koda-egress"
    assert thread.daemon
    proxies.stop()
    assert not thread.is_alive()
    proxies.stop()  # idempotent
    assert egress_threads() == []


def test_stop_without_start_does_nothing() -> None:
    EgressProxies(Allowlist([])).stop()


def test_context_manager_starts_and_stops() -> None:
    with EgressProxies(Allowlist([HOST])) as proxies:
        port = proxies.http_port
        with connect(port):
            pass
    assert egress_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_start_and_stop_work_from_inside_a_running_event_loop() -> None:
    async def inside_a_running_loop() -> int:
        with running() as proxies:
            return proxies.http_port

    assert asyncio.run(inside_a_running_loop()) > 0


def test_unix_sockets_are_private_and_removed_on_stop(tmp_path: Path) -> None:
    directory = tmp_path / "made" / "for" / "it"
    with running(socket_dir=directory) as proxies:
        assert proxies.http_socket == directory / "http.sock"
        assert proxies.socks_socket == directory / "socks.sock"
        for path in (proxies.http_socket, proxies.socks_socket):
            mode = path.stat().st_mode
            assert stat.S_ISSOCK(mode)
            assert stat.S_IMODE(mode) == 0o600
    assert sorted(directory.iterdir()) == []


def test_a_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "http.sock"))
    stale.close()  # the file stays, nothing listens: left by a crashed session
    with TcpServer() as server, running(socket_dir=tmp_path) as proxies:
        assert proxies.http_socket is not None
        with connect_unix(proxies.http_socket) as sock:
            assert status_of(http_connect(sock, f"{HOST}:{server.port}")) == 200


def test_a_socket_in_use_by_live_proxies_is_a_start_error(tmp_path: Path) -> None:
    with running(socket_dir=tmp_path) as first:
        second = EgressProxies(Allowlist([HOST]), socket_dir=tmp_path)
        with pytest.raises(ProxyStartError, match="in use by another process"):
            second.start()
        second.stop()
        assert first.http_socket is not None and first.http_socket.exists()
        with connect_unix(first.http_socket) as sock:
            assert status_of(http_connect(sock, "evil.koda.test:1")) == 403
    assert egress_threads() == []


def test_a_socket_path_that_is_a_regular_file_is_a_start_error(tmp_path: Path) -> None:
    (tmp_path / "socks.sock").write_text("not a socket")
    proxies = EgressProxies(Allowlist([HOST]), socket_dir=tmp_path)
    with pytest.raises(ProxyStartError, match="is not one"):
        proxies.start()
    assert (tmp_path / "socks.sock").read_text() == "not a socket"


def test_a_socket_dir_under_a_file_is_a_start_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ProxyStartError, match="cannot create the proxy socket directory"):
        EgressProxies(Allowlist([HOST]), socket_dir=tmp_path / "file" / "sub").start()


def test_a_socket_path_too_long_is_a_start_error(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(ProxyStartError, match="too long for a Unix socket"):
        EgressProxies(Allowlist([HOST]), socket_dir=deep).start()
    assert egress_threads() == []


@pytest.mark.parametrize(
    ("upstream", "says"),
    [
        ("https://corp.example:443", "only http:// proxies"),
        ("socks5://corp.example:1080", "only http:// proxies"),
        ("http://corp.example:99999", "not a valid URL"),
        ("http://:3128", "no host"),
    ],
)
def test_an_unusable_upstream_is_a_start_error(upstream: str, says: str) -> None:
    with pytest.raises(ProxyStartError, match=says):
        EgressProxies(Allowlist([HOST]), upstream=upstream).start()
    assert egress_threads() == []


def test_a_second_start_is_refused() -> None:
    with running() as proxies, pytest.raises(ProxyStartError, match="already started"):
        proxies.start()


def test_stop_closes_open_tunnels_on_both_sides(tmp_path: Path) -> None:
    with TcpServer() as server:
        proxies = EgressProxies(Allowlist([HOST]), socket_dir=tmp_path, resolve=_loopback)
        proxies.start()
        tunnels = [connect(proxies.http_port), connect(proxies.socks_port)]
        assert status_of(http_connect(tunnels[0], f"{HOST}:{server.port}")) == 200
        assert socks_domain(tunnels[1], HOST, server.port) == 0
        assert proxies.http_socket is not None
        tunnels.append(connect_unix(proxies.http_socket))
        assert status_of(http_connect(tunnels[2], f"{HOST}:{server.port}")) == 200
        for sock in tunnels:
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
        proxies.stop()
        for sock in tunnels:
            assert recv_all(sock) == b""  # the proxy closed it, without our end-of-file
            sock.close()
        assert server.closed.wait(10)  # and the server side too
        assert proxies.active_connections == 0
        assert egress_threads() == []


def test_stop_right_after_clients_connect_leaves_no_socket_unclosed() -> None:
    # Connections still being accepted when stop() comes must be closed too, not dropped.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(20):
            proxies = EgressProxies(Allowlist([HOST]))
            proxies.start()
            for port in (proxies.http_port, proxies.socks_port):
                connect(port).close()
            proxies.stop()
        gc.collect()
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_stop_does_not_wait_for_a_lookup_that_never_ends() -> None:
    started = threading.Event()

    async def hanging(host: str, port: int) -> list[str]:
        started.set()
        await asyncio.Event().wait()
        return []

    proxies = EgressProxies(Allowlist([HOST]), resolve=hanging)
    proxies.start()
    with connect(proxies.http_port) as sock:
        sock.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\n\r\n".encode())
        assert started.wait(10)
        proxies.stop()
        assert recv_all(sock) == b""
    assert egress_threads() == []


def test_refusals_are_capped_at_the_newest_hundred() -> None:
    with running() as proxies:
        for i in range(105):
            with connect(proxies.http_port) as sock:
                assert status_of(http_connect(sock, f"host{i}.koda.test:443")) == 403
        refusals = proxies.refusals
    assert len(refusals) == 100
    assert refusals[0].host == "host5.koda.test"
    assert refusals[-1].host == "host104.koda.test"


def test_refusals_list_is_a_snapshot() -> None:
    with running() as proxies:
        snapshot = proxies.refusals
        with connect(proxies.http_port) as sock:
            http_connect(sock, "evil.koda.test:443")
        assert snapshot == []
        assert len(proxies.refusals) == 1


def test_many_broken_clients_leave_no_connection_or_descriptor_behind() -> None:
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    with TcpServer() as server, running() as proxies:
        # One full round first, so lazily opened resources are not counted as leaks.
        with connect(proxies.http_port) as sock:
            http_connect(sock, f"{HOST}:{server.port}")
            echo_roundtrip(sock, b"warm-up")
        wait_until(lambda: proxies.active_connections == 0, "the warm-up is closed")
        before = descriptors()
        for _ in range(20):
            for port, data in (
                (proxies.http_port, b"\x00\xff garbage\r\n\r\n"),
                (proxies.http_port, b"CONNECT pkg"),
                (proxies.socks_port, b"\x05\x01"),
                (proxies.socks_port, b"\x16\x03\x01"),
            ):
                with connect(port) as sock:
                    sock.sendall(data)
            with connect(proxies.http_port) as sock:
                http_connect(sock, f"{HOST}:{server.port}")
                echo_roundtrip(sock, b"x" * 1000)
        wait_until(lambda: proxies.active_connections == 0, "every connection is closed")
        wait_until(lambda: descriptors() <= before, "the descriptors are released")


async def _loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]
