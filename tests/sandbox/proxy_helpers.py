"""Real servers and clients on 127.0.0.1 for the egress proxy tests.

The proxies under test only allow host names, so tests allowlist `pkg.koda.test` and inject a
resolver mapping it to 127.0.0.1; the resolver records every lookup, which is how the tests
prove that refused hosts never reach DNS.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from koda.sandbox.allowlist import Allowlist
from koda.sandbox.proxy import EgressProxies

HOST = "pkg.koda.test"
TIMEOUT = 10.0  # a bound on how long a broken test may hang, never a speed requirement


class RecordingResolver:
    """Resolves the names it is given to their addresses, as DNS does (case-insensitive, a
    trailing dot is the root); records every lookup as asked."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = {HOST: "127.0.0.1"} if names is None else names
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        name = host.lower().removesuffix(".")
        if name not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [self.names[name]]


@contextmanager
def running(
    patterns: list[str] | None = None,
    resolver: RecordingResolver | None = None,
    *,
    system_dns: bool = False,
    **kw: Any,
) -> Iterator[EgressProxies]:
    """Started proxies allowing `patterns` (default: HOST), stopped at the end."""
    proxies = EgressProxies(
        Allowlist([HOST] if patterns is None else patterns),
        resolve=None if system_dns else (resolver or RecordingResolver()),
        **kw,
    )
    proxies.start()
    try:
        yield proxies
    finally:
        proxies.stop()


class TcpServer:
    """A threaded TCP server on 127.0.0.1 (or, given `unix_path`, on a Unix socket);
    `handle(conn)` serves each connection.

    The default handler echoes until end-of-file, then half-closes: a tunnel that loses the
    half-close never sees the end of the echo.
    """

    def __init__(
        self, handle: Callable[[socket.socket], None] | None = None, unix_path: str | None = None
    ) -> None:
        self.handle = handle or echo
        if unix_path is None:
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.port: int = self.listener.getsockname()[1]
        else:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(unix_path)
            self.listener.listen(8)
            self.port = 0
        self.accepted = 0
        self.closed = threading.Event()  # set when a handler saw its connection end
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):  # wakes the accepting thread (Unix sockets need it)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TIMEOUT)
            try:
                self.handle(conn)
            except OSError:
                pass
            finally:
                self.closed.set()


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


def reset_after_first_bytes(conn: socket.socket) -> None:
    """Reads a little, then closes with a TCP reset (an upstream that crashes mid-tunnel)."""
    conn.recv(1024)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


@contextmanager
def unresponsive_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connect() gets no answer at all."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    try:
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def connect_unix(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(str(path))
    return sock


def recv_all(sock: socket.socket) -> bytes:
    """Everything until the peer closes (a reset counts as the end)."""
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def recv_head(sock: socket.socket) -> bytes:
    """Bytes up to and including the blank line ending an HTTP head, read one at a time."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise AssertionError(f"connection closed inside the head: {data!r}")
        data += byte
    return data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def http_connect(sock: socket.socket, target: str, early: bytes = b"") -> bytes:
    """Send CONNECT (plus `early` bytes in the same write); return the answer's head."""
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode() + early)
    return recv_head(sock)


def socks_request(sock: socket.socket, address_type: int, address: bytes, port: int) -> int:
    """Greet with no-auth, send CONNECT; the reply code."""
    sock.sendall(b"\x05\x01\x00")
    assert recv_exactly(sock, 2) == b"\x05\x00"
    sock.sendall(bytes((5, 1, 0, address_type)) + address + port.to_bytes(2, "big"))
    reply = recv_exactly(sock, 10)
    assert reply[0] == 5, reply
    return reply[1]


def socks_domain(sock: socket.socket, host: str, port: int) -> int:
    name = host.encode()
    return socks_request(sock, 3, bytes((len(name),)) + name, port)


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        more = sock.recv(count - len(data))
        if not more:
            raise AssertionError(f"connection closed after {data!r}")
        data += more
    return data


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    """Send `payload`, half-close, and return all that comes back before the end."""
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    return recv_all(sock)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting until {what}")
        time.sleep(0.01)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    """curl with no proxy variables and no .curlrc (-q): only what the test passes."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(
        ["curl", "-q", "-sS", "--max-time", str(int(TIMEOUT)), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT * 2,
    )
