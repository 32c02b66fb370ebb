"""Throughput of the egress proxies: a 100 MB download, direct and through each proxy path.

An HTTP server in a SEPARATE process on 127.0.0.1 answers every GET with the same 100 MB body
(10^8 bytes, generated in memory, sent with one sendall). The proxies run in this process, in
their own thread, exactly as a session runs them; the server name `bench.koda.test` is
allowlisted and resolved to 127.0.0.1 by an injected resolver. The client is `curl` in a
subprocess, writing to /dev/null, in four ways interleaved round by round after one warm-up
round:

  direct    curl http://127.0.0.1:PORT/
  connect   curl -p -x http://127.0.0.1:HTTP_PORT http://bench.koda.test:PORT/   (CONNECT tunnel)
  socks     curl -x socks5h://127.0.0.1:SOCKS_PORT http://bench.koda.test:PORT/
  forward   curl -x http://127.0.0.1:HTTP_PORT http://bench.koda.test:PORT/      (plain http://)

Reported: median MB/s (10^6 bytes per second, curl's size_download / time_total) for each, the
ratio to direct in the same run, and the CPU time this process (the proxy thread) spent per
100 MB proxied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import Any

import _bench as b

b.ensure_importable()

from koda.sandbox.allowlist import Allowlist  # noqa: E402
from koda.sandbox.proxy import EgressProxies  # noqa: E402

SIZE = 100_000_000
HOST = "bench.koda.test"
TARGET_MB_S = 200.0

SERVER = r"""
import socket, sys, threading
SIZE = int(sys.argv[1])
body = memoryview(bytes(range(256)) * (SIZE // 256) + bytes(SIZE % 256))
head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n" \
       b"Connection: close\r\n\r\n" % SIZE

def serve(conn):
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return
            data += more
        try:
            conn.sendall(head)
            conn.sendall(body)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
        except OSError:
            pass

listener = socket.create_server(("127.0.0.1", 0), backlog=64)
print(listener.getsockname()[1], flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [b.PYTHON, "-c", SERVER, str(SIZE)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise SystemExit(f"the benchmark server did not start (said {line!r})")
        self.port = int(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def resolve(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def curl_args(mode: str, proxies: EgressProxies, port: int) -> list[str]:
    named = f"http://{HOST}:{port}/"
    http_proxy = f"http://127.0.0.1:{proxies.http_port}"
    return {
        "direct": [f"http://127.0.0.1:{port}/"],
        "connect": ["-p", "-x", http_proxy, named],
        "socks": ["-x", f"socks5h://127.0.0.1:{proxies.socks_port}", named],
        "forward": ["-x", http_proxy, named],
    }[mode]


def download(curl: str, args: list[str]) -> tuple[float, float]:
    """(MB/s, CPU seconds this process spent meanwhile) for one download."""
    cpu = time.process_time()
    proc = subprocess.run(
        [curl, "-sS", "-o", os.devnull, "-w", "%{size_download} %{time_total}", *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},  # no proxy variables
        stdin=subprocess.DEVNULL,
    )
    cpu = time.process_time() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"curl {' '.join(args)} failed: {proc.stderr.strip()}")
    size, seconds = proc.stdout.split()
    if int(float(size)) != SIZE:
        raise SystemExit(f"curl {' '.join(args)} got {size} bytes, not {SIZE}")
    return SIZE / float(seconds) / 1e6, cpu


MODES = ("direct", "connect", "socks", "forward")
LABELS = {
    "direct": "(a) direct, no proxy",
    "connect": "(b) HTTP CONNECT tunnel",
    "socks": "(c) SOCKS5 (socks5h://)",
    "forward": "(d) plain http:// request through the HTTP proxy",
}


def measure(runs: int, curl: str) -> dict[str, dict[str, list[float]]]:
    server = Server()
    figures: dict[str, dict[str, list[float]]] = {m: {"mb_s": [], "cpu_s": []} for m in MODES}
    try:
        with EgressProxies(Allowlist([HOST]), resolve=resolve) as proxies:
            for round_no in range(runs + 1):
                b.progress(f"bench_proxy: round {round_no}/{runs} (0 is the warm-up)")
                for mode in MODES:
                    mb_s, cpu = download(curl, curl_args(mode, proxies, server.port))
                    if round_no:
                        figures[mode]["mb_s"].append(mb_s)
                        figures[mode]["cpu_s"].append(cpu)
            if proxies.refusals:
                raise SystemExit(f"the proxies refused: {proxies.refusals}")
    finally:
        server.close()
    return figures


def main() -> None:
    p = b.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    args = p.parse_args()
    curl = shutil.which("curl")
    if curl is None:
        raise SystemExit("bench_proxy needs curl on PATH")
    figures = measure(args.runs, curl)
    result = b.Result("proxy", b.command(__file__, *sys.argv[1:]))
    direct = b.median(figures["direct"]["mb_s"])
    details: dict[str, Any] = {"size_bytes": SIZE, "runs": figures}
    for mode in MODES:
        mb_s = b.median(figures[mode]["mb_s"])
        values = figures[mode]["mb_s"]
        note = f"n={args.runs}, {b.spread(values)}"
        if mode != "direct":
            cpu_per_100mb = b.median(figures[mode]["cpu_s"]) * 1e8 / SIZE
            note += f"; {mb_s / direct:.2f}x direct; proxy CPU {cpu_per_100mb:.2f} s per 100 MB"
        if mode == "connect":
            result.add(f"100 MB download, {LABELS[mode]}", round(mb_s, 1), "MB/s",
                       f">= {TARGET_MB_S:g} MB/s", mb_s >= TARGET_MB_S, note)  # fmt: skip
        else:
            result.add(f"100 MB download, {LABELS[mode]}", round(mb_s, 1), "MB/s", note=note)
        details[f"{mode}_ratio_to_direct"] = round(mb_s / direct, 3)
    result.details = details
    b.emit(result, args.json)


if __name__ == "__main__":
    main()
    sys.exit(0)
