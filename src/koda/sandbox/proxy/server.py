"""The session's egress proxies: their thread and event loop, their listeners, start and stop.

Both proxies run on one event loop in one daemon thread, so proxied traffic never slows the
engine's loop. Each listens on a loopback TCP port and, when given a directory, on a Unix
socket there, which the bridge inside the sandbox's network namespace connects to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from koda.sandbox.allowlist import Allowlist
from koda.sandbox.proxy.dial import Dialer, Resolver, system_resolve
from koda.sandbox.proxy.egress import Egress
from koda.sandbox.proxy.http_head import MAX_HEAD
from koda.sandbox.proxy.http_proxy import serve_http
from koda.sandbox.proxy.refusals import Refusal, RefusalLog
from koda.sandbox.proxy.relay import CHUNK, Conn
from koda.sandbox.proxy.socket_files import SocketPathError, socket_paths
from koda.sandbox.proxy.socks5 import serve_socks
from koda.sandbox.proxy.upstream import Upstream, parse_upstream

log = logging.getLogger(__name__)

MAX_REFUSALS = 100
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
NO_PROXY = "localhost,127.0.0.1,::1"

Serve = Callable[[Egress, Conn], Awaitable[None]]


class ProxyStartError(Exception):
    """The proxies could not start; the message says why."""


class EgressProxies:
    """An HTTP (CONNECT and plain http://) proxy and a SOCKS5 proxy sharing one allowlist."""

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        socket_dir: Path | None = None,
        resolve: Resolver | None = None,
        upstream: str | None = None,
        connect_timeout: float = 10.0,
        handshake_timeout: float = 30.0,
    ) -> None:
        self.allowlist = allowlist
        self.socket_dir = socket_dir
        self.upstream = upstream
        self.http_port = 0
        self.socks_port = 0
        self.http_socket: Path | None = None
        self.socks_socket: Path | None = None
        self._resolve = resolve or system_resolve
        self._connect_timeout = connect_timeout
        self._handshake_timeout = handshake_timeout
        self._refusals = RefusalLog(MAX_REFUSALS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._start_error: str | None = None
        self._running = False

    @property
    def refusals(self) -> list[Refusal]:
        """What was refused, newest last (the last MAX_REFUSALS)."""
        return self._refusals.snapshot()

    @property
    def refusal_count(self) -> int:
        """All refusals so far; `refusals_since(count)` gives the ones after it."""
        return self._refusals.total()

    def refusals_since(self, count: int) -> list[Refusal]:
        return self._refusals.since(count)

    @property
    def active_connections(self) -> int:
        """Client connections being served right now (handshakes and open tunnels)."""
        return len(self._tasks)

    def start(self) -> None:
        """Listen on 127.0.0.1 (and the Unix sockets); returns once listening."""
        if self._thread is not None:
            raise ProxyStartError("the egress proxies were already started")
        egress = Egress(
            self.allowlist,
            Dialer(self._resolve, self._parse_upstream(), self._connect_timeout),
            self._refusals,
            self._handshake_timeout,
        )
        sockets = self._socket_paths()
        ready = threading.Event()
        # Made here, not in the thread, so that stop() can always reach them.
        loop = asyncio.new_event_loop()
        self._stopping = asyncio.Event()
        thread = threading.Thread(
            target=self._run, args=(loop, egress, sockets, ready), name="koda-egress", daemon=True
        )
        try:
            thread.start()
        except RuntimeError as exc:
            loop.close()
            raise ProxyStartError(f"cannot start the egress proxy thread: {exc}") from None
        self._loop, self._thread = loop, thread
        if not ready.wait(START_TIMEOUT):
            self.stop()
            raise ProxyStartError(f"the egress proxies did not start within {START_TIMEOUT:g} s")
        if self._start_error is not None:
            self.stop()
            raise ProxyStartError(self._start_error)
        self._running = True

    def env(self) -> dict[str, str]:
        """The environment that sends a sandboxed command's traffic through the proxies."""
        if not self._running:
            raise RuntimeError("the egress proxies are not running")
        http = f"http://127.0.0.1:{self.http_port}"
        socks = f"socks5h://127.0.0.1:{self.socks_port}"
        return {
            "HTTPS_PROXY": http,
            "https_proxy": http,
            "HTTP_PROXY": http,
            "http_proxy": http,
            "ALL_PROXY": socks,
            "all_proxy": socks,
            "NO_PROXY": NO_PROXY,
            "no_proxy": NO_PROXY,
            "KODA_PROXY_PORT": str(self.http_port),
        }

    def stop(self) -> None:
        """Close the listeners and every open tunnel, remove the sockets; safe to call again."""
        self._running = False
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(stopping.set)
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT)
        for path in (self.http_socket, self.socks_socket):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
        self.http_socket = self.socks_socket = None

    def __enter__(self) -> EgressProxies:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _parse_upstream(self) -> Upstream | None:
        if self.upstream is None:
            return None
        try:
            return parse_upstream(self.upstream)
        except ValueError as exc:
            raise ProxyStartError(str(exc)) from None

    def _socket_paths(self) -> tuple[Path, Path] | None:
        if self.socket_dir is None:
            return None
        try:
            return socket_paths(self.socket_dir)
        except SocketPathError as exc:
            raise ProxyStartError(str(exc)) from None

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        egress: Egress,
        sockets: tuple[Path, Path] | None,
        ready: threading.Event,
    ) -> None:
        # Our own executor for DNS lookups, dropped without waiting: a lookup that hangs must
        # not hold up stop().
        executor = ThreadPoolExecutor(thread_name_prefix="koda-egress-dns")
        loop.set_default_executor(executor)
        loop.set_exception_handler(_log_loop_error)
        try:
            loop.run_until_complete(self._serve(egress, sockets, ready))
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            loop.close()

    async def _serve(
        self, egress: Egress, sockets: tuple[Path, Path] | None, ready: threading.Event
    ) -> None:
        assert self._stopping is not None
        servers: list[asyncio.Server] = []
        try:
            await self._listen(egress, sockets, servers)
        except OSError as exc:
            self._start_error = f"the egress proxies cannot listen: {exc.strerror or exc}"
        ready.set()
        if self._start_error is None:
            await self._stopping.wait()
        await _cancel_all(self._tasks)
        for server in servers:  # at once: no await, so no accept can start in between
            server.close()

    async def _listen(
        self, egress: Egress, sockets: tuple[Path, Path] | None, servers: list[asyncio.Server]
    ) -> None:
        """Start every listener, appending each to `servers` as soon as it exists."""
        http = self._on_connect(serve_http, egress)
        socks = self._on_connect(serve_socks, egress)
        servers.append(await asyncio.start_server(http, "127.0.0.1", 0, limit=MAX_HEAD))
        self.http_port = _port(servers[-1])
        servers.append(await asyncio.start_server(socks, "127.0.0.1", 0, limit=CHUNK))
        self.socks_port = _port(servers[-1])
        if sockets is None:
            return
        http_path, socks_path = sockets
        servers.append(await asyncio.start_unix_server(http, str(http_path), limit=MAX_HEAD))
        self.http_socket = http_path
        http_path.chmod(0o600)
        servers.append(await asyncio.start_unix_server(socks, str(socks_path), limit=CHUNK))
        self.socks_socket = socks_path
        socks_path.chmod(0o600)

    def _on_connect(
        self, serve: Serve, egress: Egress
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], None]:
        # A plain callback that makes its own task, so the task is tracked (for stop()) from
        # its first moment and its end is handled here, not by asyncio's default reporting.
        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.get_running_loop().create_task(
                _serve_client(serve, egress, Conn(reader, writer))
            )
            self._tasks.add(task)

            def finished(done: asyncio.Task[None]) -> None:
                self._tasks.discard(done)
                # A no-op after a clean close; otherwise (an error, or a task cancelled by
                # stop() before it ever ran) the connection must not outlive its handler.
                writer.transport.abort()

            task.add_done_callback(finished)

        return connected


async def _serve_client(serve: Serve, egress: Egress, client: Conn) -> None:
    try:
        await serve(egress, client)
        await client.close()
    except Exception as exc:  # one bad connection must never reach the loop
        log.debug("egress proxy connection ended with %r", exc)


async def _cancel_all(handlers: set[asyncio.Task[None]]) -> None:
    """Cancel every connection handler, until no task at all is left on this loop.

    Listeners are closed only after that: an accept still in flight when its server closes
    fails inside asyncio and leaks its socket. The loop's accept tasks are waited for, never
    cancelled (one cancelled before its first step drops its socket unclosed); each finishes
    at once and may start one more handler, which the next round cancels.
    """
    current = asyncio.current_task()
    while True:
        for task in list(handlers):
            task.cancel()
        others = [task for task in asyncio.all_tasks() if task is not current]
        if not others:
            return
        await asyncio.wait(others)


def _port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    log.debug("egress proxy loop: %s", context.get("message"), exc_info=context.get("exception"))
