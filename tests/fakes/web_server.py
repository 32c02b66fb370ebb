"""A local web server for WebFetch and WebSearch tests: real HTTP(S) on 127.0.0.1, scripted pages.

Each path answers with a `Page` (status, headers, body; optionally gzip-encoded, delayed, or
dripped slowly) or with a function of the request that returns one. Every request is recorded
(method, path with query, headers, body) so tests can check what was sent, and which requests
never arrived. `tls_contexts` makes a throwaway CA and a certificate for given host names with
the openssl command, for HTTPS tests.

Use:
    with WebServer() as server:
        server.pages["/"] = Page("<h1>Hi</h1>")
        server.pages["/old"] = redirect("/")
        ... fetch server.url("/") ...
        server.requests[0].headers["host"]
"""

from __future__ import annotations

import contextlib
import gzip
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass
class Page:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between 1 KB pieces of the body
    gzip: bool = False


@dataclass
class Request:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The urlencoded body (or query, for GET) as single values."""
        source = self.body.decode() if self.body else urlsplit(self.path).query
        return {k: v[0] for k, v in parse_qs(source, keep_blank_values=True).items()}


Handler = Page | Callable[[Request], Page]


def redirect(location: str, status: int = 302) -> Page:
    return Page(b"", status=status, headers={"Location": location})


class WebServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.pages: dict[str, Handler] = {}
        self.requests: list[Request] = []
        self._tls = tls
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def __enter__(self) -> WebServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Request) -> Page:
        self.requests.append(request)
        handler = self.pages.get(urlsplit(request.path).path)
        if handler is None:
            return Page("<h1>Not Found</h1>", status=404)
        return handler(request) if callable(handler) else handler

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                page = server._answer(Request(self.command, self.path, headers, body))
                time.sleep(page.delay)
                data = page.body.encode() if isinstance(page.body, str) else page.body
                if page.gzip:
                    data = gzip.compress(data)
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Content-Length", str(len(data)))
                if page.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in page.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                # The client may give up (a size cap or a timeout), as tests intend.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    self._write(data, page.drip)

            def _write(self, data: bytes, drip: float) -> None:
                if not drip:
                    self.wfile.write(data)
                    return
                for start in range(0, len(data), 1024):
                    self.wfile.write(data[start : start + 1024])
                    self.wfile.flush()
                    time.sleep(drip)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output quiet

        return _Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up mid-request (caps, timeouts, refused certificates) is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def tls_contexts(directory: Path, *names: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for `names`, client context trusting only its CA)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    san = ",".join(f"DNS:{name}" for name in names)
    (directory / "ext.cnf").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf",
            "-out", "server.pem")  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "server.pem", directory / "server.key")
    client = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    return server, client
