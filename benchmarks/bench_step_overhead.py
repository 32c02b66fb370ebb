"""Per-turn and per-step engine overhead, in process, with 100 / 1,000 / 10,000 messages of history.

Setup for each size N: a real Store (SQLite file in a temp dir), a session created with
`KodaSession.create`, and N realistic rows inserted through `db.messages.insert` (see _history.py:
user prompts, assistant rows with a tool call, tool results, answers; ~280 characters on average).
The project is a temp dir holding one empty sub-directory.

The model is the scripted provider with zero delay and explicit `usage`, so it does no work that
grows with the history. Each measured turn is: `add_user_message("next")` (not timed), then timed
`await session.run_turn(config, [], sink, commands)` exactly as headless mode calls it (with a
command queue, a sink that only counts events). After each turn the rows it added are deleted (not
timed), so every turn sees exactly N stored messages + the new prompt.

Three kinds of turn, interleaved round by round:

    A  one model call:     reply = plain text                          -> "per-turn cost"
    B  two model calls:    reply 1 = Glob on the empty dir, reply 2 = the same plain text
    C  K+1 model calls:    K replies each a Glob on the empty dir (a different pattern each, so the
                           repeat detector stays quiet), then the same plain text (K = --steps, 10)

B - A is the cost of one extra loop iteration inside a turn: build the request, stream a reply,
record it (1 insert), classify and run the tool, record its result (1 insert), and loop. The
medians of A and B are compared (and the median of the per-round differences B-A is shown too).
Because every turn also re-reads the whole history (see below), A and B are noisy at 10,000
messages; (C - A) / K measures the same per-step cost averaged over K steps, which is far less
noisy. Least noisy of all, turn C is also timed from the inside: the sink stamps each `Usage` event
(emitted once per model reply, as it is recorded), and (last stamp - first stamp) / K is the mean
time of one loop iteration with the history already in memory. The Glob call's own run time
(measured alone, `await Glob().run(ctx, args)`) is reported so the engine's share can be read as
per-step - Glob.

For information, the two steps of `Turn.__init__` that read the history are timed alone at each
size (after a `gc.collect()`, not timed): `db.messages.load(session_id)` and `build_history(rows)`.

Target (issue): per-step overhead under 5 ms at 1,000 messages (checked on all three figures).
"""

from __future__ import annotations

import asyncio
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import _bench as b
import _history

b.ensure_importable()

from koda.config import KodaConfig  # noqa: E402
from koda.engine import events as ev  # noqa: E402
from koda.engine.agent import KodaAgent  # noqa: E402
from koda.engine.history import build_history  # noqa: E402
from koda.engine.session import KodaSession  # noqa: E402
from koda.engine.trust import TrustMode  # noqa: E402
from koda.providers.scripted import ScriptedProvider, load_script  # noqa: E402
from koda.store import Store  # noqa: E402
from koda.tools.base import ToolContext  # noqa: E402
from koda.tools.glob import Glob  # noqa: E402

TARGET_MS = 5.0
TARGET_SIZE = 1000
USAGE = {"prompt": 1000, "completion": 10}
TEXT = {"text": "All done: nothing else to change.", "usage": USAGE}
GLOB_ARGS = {"pattern": "*.py", "path": "empty"}
SCRIPT_A = json.dumps([TEXT])
SCRIPT_B = json.dumps([{"tool_calls": [{"name": "Glob", "args": GLOB_ARGS}], "usage": USAGE}, TEXT])


def script_c(steps: int) -> str:
    calls = [
        {
            "tool_calls": [{"name": "Glob", "args": {"pattern": f"*.x{i}", "path": "empty"}}],
            "usage": USAGE,
        }
        for i in range(steps)
    ]
    return json.dumps([*calls, TEXT])


class CountingSink:
    def __init__(self) -> None:
        self.end: ev.TurnEndReason | None = None
        self.tool_ok: list[bool] = []
        self.usage_times: list[float] = []

    def emit(self, event: ev.EngineEvent) -> None:
        if isinstance(event, ev.TurnEnd):
            self.end = event.reason
        elif isinstance(event, ev.ToolCallResult):
            self.tool_ok.append(event.ok)
        elif isinstance(event, ev.Usage):
            self.usage_times.append(time.perf_counter())


async def timed_turn(
    session: KodaSession, script: str, config: KodaConfig, tools: int
) -> tuple[float, float | None]:
    """Wall ms of run_turn, and the mean ms between Usage events (None with one model call)."""
    db = session.db
    last = db.conn.execute("SELECT MAX(id) FROM messages").fetchone()[0] or 0
    # A window that holds 10,000 messages (2.8 M characters): steps are measured, not the
    # compaction a 200k window would start.
    session.provider = ScriptedProvider(load_script(script), context_window=4_000_000)
    session.add_user_message("next")
    sink = CountingSink()
    commands: asyncio.Queue[Any] = asyncio.Queue()
    start = time.perf_counter()
    await session.run_turn(config, [], sink, commands)
    elapsed = (time.perf_counter() - start) * 1000
    if sink.end is None or sink.end.kind != "complete" or sink.tool_ok != [True] * tools:
        raise SystemExit(
            f"the benchmark turn did not complete as scripted: {sink.end} {sink.tool_ok}"
        )
    db.conn.execute("DELETE FROM messages WHERE session_id = ? AND id > ?", (session.id, last))
    u = sink.usage_times
    inner = (u[-1] - u[0]) * 1000 / (len(u) - 1) if len(u) > 1 else None
    return elapsed, inner


async def glob_alone(project: Path, session: KodaSession, runs: int) -> list[float]:
    tool = Glob()
    ctx = ToolContext(
        project_root=project, cancel=session.cancel, file_tracker=session.file_tracker
    )
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = await tool.run(ctx, dict(GLOB_ARGS))
        times.append((time.perf_counter() - start) * 1000)
        assert result.ok, result.output
    return times


def history_reads(db: Store, session_id: str, runs: int) -> tuple[list[float], list[float], int]:
    loads, builds = [], []
    count = 0
    for _ in range(runs):
        gc.collect()  # not timed: start each read from the same heap, as a fresh turn would
        t0 = time.perf_counter()
        rows = db.messages.load(session_id)
        t1 = time.perf_counter()
        history = build_history(rows)
        t2 = time.perf_counter()
        loads.append((t1 - t0) * 1000)
        builds.append((t2 - t1) * 1000)
        count = len(history)
        del rows, history  # as after a turn: the last turn's history is garbage by the next one
    return loads, builds, count


async def measure_size(n: int, runs: int, warmup: int, steps: int, tmp: Path) -> dict[str, Any]:
    project = tmp / f"project-{n}"
    (project / "empty").mkdir(parents=True)
    db = Store.open(tmp / f"koda-{n}.db")
    try:
        config = KodaConfig()
        agent = KodaAgent.create(project)
        session = KodaSession.create(agent, db, ScriptedProvider([]), TrustMode.SAFE, config)
        chars = _history.fill(db, session.id, n)
        stored = db.messages.count(session.id)
        assert stored == n, (stored, n)
        a: list[float] = []
        bb: list[float] = []
        c: list[float] = []
        inner: list[float] = []
        many = script_c(steps)
        for i in range(warmup + runs):
            ta, _ = await timed_turn(session, SCRIPT_A, config, tools=0)
            tb, _ = await timed_turn(session, SCRIPT_B, config, tools=1)
            tc, step = await timed_turn(session, many, config, tools=steps)
            if i >= warmup:
                a.append(ta)
                bb.append(tb)
                c.append(tc)
                inner.append(step or 0.0)
        assert db.messages.count(session.id) == n
        glob = await glob_alone(project, session, runs)
        loads, builds, hist_len = history_reads(db, session.id, runs)
    finally:
        db.close()
    return {
        "messages": n,
        "history_messages": hist_len,
        "content_chars": chars,
        "turn_text_ms": a,
        "turn_tool_step_ms": bb,
        "turn_k_steps_ms": c,
        "steps": steps,
        "inner_step_ms": inner,
        "glob_alone_ms": glob,
        "load_ms": loads,
        "build_history_ms": builds,
    }


def report_size(result: b.Result, s: dict[str, Any], runs: int) -> None:
    n, k = s["messages"], s["steps"]
    a_ms, b_ms, c_ms = s["turn_text_ms"], s["turn_tool_step_ms"], s["turn_k_steps_ms"]
    a, bb, c = b.median(a_ms), b.median(b_ms), b.median(c_ms)
    paired = b.median([y - x for x, y in zip(a_ms, b_ms, strict=True)])
    glob = b.median(s["glob_alone_ms"])
    step, step_k = bb - a, (c - a) / k
    judged = n == TARGET_SIZE
    target = f"< {TARGET_MS:.0f} ms" if judged else ""
    result.add(
        f"{n:,} msgs: A turn, 1 model call (text)", a, note=f"n={runs}, range {b.spread(a_ms)} ms"
    )
    result.add(
        f"{n:,} msgs: B turn, 2 model calls (Glob, text)",
        bb,
        note=f"n={runs}, range {b.spread(b_ms)} ms",
    )
    result.add(
        f"{n:,} msgs: C turn, {k + 1} model calls ({k} Globs, text)",
        c,
        note=f"n={runs}, range {b.spread(c_ms)} ms",
    )
    result.add(
        f"{n:,} msgs: per-step overhead, B - A",
        step,
        target=target,
        passed=(step < TARGET_MS) if judged else None,
        note=f"paired median {paired:.2f} ms; minus Glob alone ({glob:.2f}) = {step - glob:.2f}",
    )
    result.add(
        f"{n:,} msgs: per-step overhead, (C - A) / {k}",
        step_k,
        target=target,
        passed=(step_k < TARGET_MS) if judged else None,
        note=f"minus Glob alone ({glob:.2f}) = {step_k - glob:.2f} ms",
    )
    inner = b.median(s["inner_step_ms"])
    result.add(
        f"{n:,} msgs: per-step overhead, inside C (Usage to Usage)",
        inner,
        target=target,
        passed=(inner < TARGET_MS) if judged else None,
        note=f"range {b.spread(s['inner_step_ms'])} ms; minus Glob alone = {inner - glob:.2f} ms",
    )
    load, build = b.median(s["load_ms"]), b.median(s["build_history_ms"])
    result.add(
        f"{n:,} msgs: messages.load + build_history",
        load + build,
        note=f"load {load:.2f} + build {build:.2f} ms ({s['history_messages']:,} messages);"
        " paid at the start of every turn",
    )


def main() -> None:
    p = b.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15, help="measured rounds per size (default 15)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument(
        "--sizes", default="100,1000,10000", help="history sizes (default 100,1000,10000)"
    )
    p.add_argument("--steps", type=int, default=10, help="tool steps in turn C (default 10)")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    per_size = []
    with tempfile.TemporaryDirectory(prefix="koda-bench-") as tmp:
        for n in sizes:
            b.progress(f"step overhead: {n} messages, {args.runs} rounds…")
            gc.collect()
            per_size.append(
                asyncio.run(measure_size(n, args.runs, args.warmup, args.steps, Path(tmp)))
            )

    result = b.Result("step_overhead", b.command(__file__))
    for s in per_size:
        report_size(result, s, args.runs)
    result.details = {"sizes": per_size}
    b.emit(result, args.json)


if __name__ == "__main__":
    main()
