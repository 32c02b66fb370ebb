"""Streaming from an OpenAI-compatible server over real HTTP, and `koda -p` up to its first request.

The fake OpenAI server (tests/fakes/openai_fake.py, standard library only) runs as a SEPARATE
process on 127.0.0.1, so its CPU time is never counted here. It streams `chat.completion.chunk`
events exactly as OpenAI does (chunked transfer, one `data:` line per chunk, usage, `[DONE]`) and
records the arrival time of every request on the monotonic clock, which on Linux is one clock
for all processes.

1. Long answer: every request gets an answer of --chunks text chunks (default 10,000), each its
   own `data:` event written and flushed on its own. Three consumers, interleaved, --runs rounds
   after --warmup:
     raw      httpx2 + koda.providers.sse only: the lines split into events, nothing parsed
     adapter  OpenAICompatProvider.stream(): every event parsed into a StreamChunk
     engine   one whole KodaSession.run_turn (fresh session each round, a store on disk, the
              default tool catalog, a sink that only counts events): the adapter plus the
              engine's reply assembly and events, then the reply saved
   Reported per consumer: chunks per second (wall) and CPU time per chunk (time.process_time of
   this process only), medians.
2. Start-up: `koda -p hi` with KODA_PROVIDER=openai, OPENAI_API_KEY=test, OPENAI_BASE_URL=the
   fake's /v1, a temp KODA_HOME and a temp project, interleaved with `python -c pass`. Reported:
   spawn -> first request byte at the fake (the model-list probe, GET /v1/models), spawn -> the
   chat request's first byte (POST /v1/chat/completions), the whole run, and bare Python. For
   information, in fresh processes: the time to import the headless path, then the adapter
   (httpx2), then to create the HTTP client (its TLS context loads the CA bundle).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import _bench as b

b.ensure_importable()

FAKE = b.REPO / "tests" / "fakes" / "openai_fake.py"
LOCAL = "127.0.0.1,localhost"


class FakeServer:
    """The fake OpenAI server in its own process."""

    def __init__(self, chunks: int) -> None:
        self.proc = subprocess.Popen(
            [b.PYTHON, str(FAKE), "--chunks", str(chunks)],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise SystemExit(f"the fake server did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{line}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def set_chunks(self, n: int) -> None:
        self._call("POST", "/_fake/default", {"chunks": n})

    def reset(self) -> None:
        self._call("POST", "/_fake/reset", {})

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/_fake/requests")
        return result

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- 1. the long answer ---------------------------------------------------------------------


async def consume_raw(base_url: str) -> int:
    import httpx2

    from koda.providers.http import make_client
    from koda.providers.sse import iter_sse

    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    n = 0
    url = f"{base_url}/chat/completions"
    async with make_client() as client, client.stream("POST", url, json=body) as response:
        assert isinstance(response, httpx2.Response)
        async for _ in iter_sse(response.aiter_lines()):
            n += 1
    return n


async def consume_adapter(base_url: str) -> int:
    from koda.providers.base import ChatRequest, Message, TextChunk
    from koda.providers.hosts import HOSTS
    from koda.providers.openai_compat import OpenAICompatProvider

    provider = OpenAICompatProvider(HOSTS["openai"], api_key="test", base_url=base_url)
    request = ChatRequest("gpt-4.1", "You are Koda.", [Message("user", "hi")], [])
    n = 0
    try:
        async for chunk in provider.stream(request):
            n += isinstance(chunk, TextChunk)
    finally:
        await provider.aclose()
    return n


class CountingSink:
    def __init__(self) -> None:
        self.count = 0
        self.deltas = 0

    def emit(self, event: Any) -> None:
        self.count += 1
        self.deltas += type(event).__name__ == "TextDelta"


async def consume_engine(base_url: str, home: Path, project: Path) -> int:
    from koda.config import KodaConfig
    from koda.engine.agent import KodaAgent
    from koda.engine.session import KodaSession
    from koda.engine.trust import TrustMode
    from koda.providers.hosts import HOSTS
    from koda.providers.openai_compat import OpenAICompatProvider
    from koda.store import Store

    store = Store.open(home / "koda.db")
    provider = OpenAICompatProvider(HOSTS["openai"], api_key="test", base_url=base_url)
    try:
        config = KodaConfig(retry_attempts=1)
        session = KodaSession.create(
            KodaAgent.create(project), store, provider, TrustMode.AUTO, config
        )
        session.add_user_message("hi")
        await session.probe_model()  # its GET /v1/models is not part of the stream
        sink = CountingSink()
        await session.run_turn(config, [], sink, None)
        return sink.deltas
    finally:
        await provider.aclose()
        store.close()


def timed(coro_fn: Any, *args: Any) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (this process) and the count, for one consumption."""

    async def run() -> tuple[float, float, int]:
        t0, c0 = time.perf_counter(), time.process_time()
        n = await coro_fn(*args)
        return time.perf_counter() - t0, time.process_time() - c0, n

    return asyncio.run(run())


def long_answer(fake: FakeServer, chunks: int, runs: int, warmup: int) -> dict[str, Any]:
    fake.set_chunks(chunks)
    base = f"{fake.url}/v1"
    out: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "project"
        home.mkdir()
        project.mkdir()
        consumers: dict[str, tuple[Any, ...]] = {
            "raw": (consume_raw, base),
            "adapter": (consume_adapter, base),
            "engine": (consume_engine, base, home, project),
        }
        for round_ in range(warmup + runs):
            for name, (fn, *args) in consumers.items():
                wall, cpu, n = timed(fn, *args)
                expected = chunks + 4 if name == "raw" else chunks  # role, finish, usage, [DONE]
                if n != expected:
                    raise SystemExit(f"{name}: read {n} chunks, expected {expected}")
                if round_ >= warmup:
                    row = out.setdefault(name, {"wall": [], "cpu": []})
                    row["wall"].append(wall)
                    row["cpu"].append(cpu)
    return {
        name: {
            "chunks_per_s": chunks / b.median(v["wall"]),
            "cpu_us_per_chunk": b.median(v["cpu"]) / chunks * 1e6,
            "wall_ms": [round(w * 1000, 1) for w in v["wall"]],
            "cpu_ms": [round(c * 1000, 1) for c in v["cpu"]],
        }
        for name, v in out.items()
    }


# -- 2. start-up to the first request ------------------------------------------------------


def startup(fake: FakeServer, runs: int, warmup: int) -> dict[str, Any]:
    fake.set_chunks(3)
    koda = b.koda_script()
    pythons: list[float] = []
    first: list[float] = []
    chat: list[float] = []
    whole: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "project"
        home.mkdir()
        project.mkdir()
        env = b.clean_env(
            KODA_HOME=str(home),
            KODA_PROVIDER="openai",
            OPENAI_API_KEY="test",
            OPENAI_BASE_URL=f"{fake.url}/v1",
            NO_PROXY=LOCAL,
            no_proxy=LOCAL,
        )
        for round_ in range(warmup + runs):
            py = b.time_run([b.PYTHON, "-c", "pass"], env=env)
            fake.reset()
            t0 = time.monotonic()
            proc = subprocess.run(
                [koda, "-p", "hi"], env=env, cwd=project, capture_output=True,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            t_end = time.monotonic()
            if proc.returncode != 0 or proc.stdout.decode().strip() != "tok tok tok":
                raise SystemExit(
                    f"koda -p hi failed ({proc.returncode}): {proc.stdout!r} {proc.stderr!r}"
                )
            seen = fake.requests()
            posts = [r["arrived"] for r in seen if r["path"] == "/v1/chat/completions"]
            if round_ >= warmup:
                pythons.append(py)
                first.append((min(r["arrived"] for r in seen) - t0) * 1000)
                chat.append((posts[0] - t0) * 1000)
                whole.append((t_end - t0) * 1000)
        paths = [f"{r['method']} {r['path']}" for r in seen]
    return {
        "python_ms": pythons,
        "first_request_ms": first,
        "chat_request_ms": chat,
        "whole_ms": whole,
        "requests": paths,
    }


SPLIT = """
import json, time
t0 = time.perf_counter()
import koda.cli.headless
t1 = time.perf_counter()
import koda.providers.openai_compat
t2 = time.perf_counter()
from koda.providers.http import make_client
make_client()
t3 = time.perf_counter()
print(json.dumps([(t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000]))
"""


def split(runs: int) -> dict[str, list[float]]:
    """Where start-up goes: the headless path's imports, the adapter's (httpx2), the client."""
    env = b.clean_env()
    parts: dict[str, list[float]] = {"headless_imports": [], "adapter_imports": [], "client": []}
    for _ in range(runs):
        out = subprocess.run([b.PYTHON, "-c", SPLIT], env=env, capture_output=True, check=True)
        for key, value in zip(parts, json.loads(out.stdout), strict=True):
            parts[key].append(value)
    return parts


def main() -> None:
    p = b.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7, help="measured rounds for part 1 (default 7)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--chunks", type=int, default=10_000, help="chunks of the long answer")
    p.add_argument("--startup-runs", type=int, default=15, help="measured rounds for part 2")
    args = p.parse_args()
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = LOCAL  # trust_env: never via a proxy

    result = b.Result("stream", b.command(__file__))
    fake = FakeServer(args.chunks)
    try:
        b.progress(f"bench_stream: {args.chunks:,} chunks x {args.runs} runs (+{args.warmup})")
        stream = long_answer(fake, args.chunks, args.runs, args.warmup)
        b.progress(f"bench_stream: koda -p hi x {args.startup_runs} runs (+2)")
        start = startup(fake, args.startup_runs, 2)
        parts = split(args.startup_runs)
    finally:
        fake.close()

    n = args.runs
    labels = {
        "raw": "HTTP + SSE lines only (httpx2 + sse.iter_sse)",
        "adapter": "OpenAICompatProvider.stream()",
        "engine": "engine turn (adapter + reply assembly + events + save)",
    }
    for name, label in labels.items():
        s = stream[name]
        result.add(f"{args.chunks:,}-chunk answer, {label}: chunks/s",
                   round(s["chunks_per_s"]), "chunks/s", note=f"n={n}")  # fmt: skip
        result.add(f"{args.chunks:,}-chunk answer, {label}: CPU per chunk",
                   round(s["cpu_us_per_chunk"], 1), "µs", note=f"n={n}")  # fmt: skip
    m = args.startup_runs
    py = b.median(start["python_ms"])
    for key, label in (
        ("first_request_ms", "`koda -p hi`: spawn -> first request byte at the fake"),
        ("chat_request_ms", "`koda -p hi`: spawn -> chat request byte at the fake"),
        ("whole_ms", "`koda -p hi`: whole run (spawn -> exit)"),
    ):
        values = start[key]
        result.add(label, round(b.median(values), 1), "ms",
                   note=f"n={m}, {b.spread(values)}; python -c pass {py:.1f} ms")  # fmt: skip
    result.add("`python -c pass` (same run)", round(py, 1), "ms", note=f"n={m}")
    for key, label in (
        ("headless_imports", "of which: importing koda.cli.headless"),
        ("adapter_imports", "of which: importing koda.providers.openai_compat (httpx2)"),
        ("client", "of which: http.make_client() (httpx2 client: TLS context, CA bundle)"),
    ):
        values = parts[key]
        result.add(label, round(b.median(values), 1), "ms", note=f"n={m}, {b.spread(values)}")
    result.details = {
        "stream": stream,
        "startup": start,
        "startup_split_ms": parts,
        "requests_of_one_koda_run": start["requests"],
    }
    b.emit(result, args.json)


if __name__ == "__main__":
    main()
    sys.exit(0)
