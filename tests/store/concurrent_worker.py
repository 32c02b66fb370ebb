"""One of several processes sharing a Koda database (see test_two_processes.py).

Usage:
  concurrent_worker.py DB write PROJECT_ROOT COUNT   insert COUNT messages into a new session
  concurrent_worker.py DB turns PROJECT_ROOT TURNS   run TURNS engine turns (5 rows each)
  concurrent_worker.py DB read SECONDS                list and load sessions for SECONDS

Waits for the file DB.go to exist before starting, so all workers start together. Prints
`session <id>` (writers) and `done <n>` at the end; any exception exits non-zero.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from koda.store import Store


def wait_for_go(db: Path) -> None:
    go = db.with_name(db.name + ".go")
    deadline = time.monotonic() + 20
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.005)


def write(db: Path, project: str, count: int) -> None:
    store = Store.open(db)
    sid = store.sessions.create(project, "safe", "scripted", "m").id
    print(f"session {sid}", flush=True)
    for i in range(count):
        if i % 3 == 0:
            store.messages.insert(sid, "user", f"message {i}")
        elif i % 3 == 1:
            store.messages.insert(
                sid,
                "assistant",
                f"reply {i}",
                tool_calls=[{"id": f"c{i}", "name": "Read", "arguments": {"path": "x"}}],
                usage={"prompt": 10, "completion": 1},
            )
        else:
            store.messages.insert(
                sid, "tool", f"result {i}", tool_call_id=f"c{i - 1}", tool_name="Read"
            )
        if i % 50 == 0:
            store.sessions.set_metadata(sid, "progress", str(i))
            store.sessions.set_title_once(sid, f"worker {sid[:8]}")
    store.close()
    print(f"done {count}", flush=True)


async def turns(db: Path, project: str, count: int) -> None:
    from koda.config import KodaConfig
    from koda.engine.agent import KodaAgent
    from koda.engine.commands import EngineCommand
    from koda.engine.events import TurnEnd
    from koda.engine.session import KodaSession
    from koda.engine.sink import CollectingSink
    from koda.engine.trust import TrustMode
    from koda.providers.scripted import ScriptedProvider, load_script

    store = Store.open(db)
    reply = [
        {
            "tool_calls": [
                {"name": "Read", "args": {"path": "hello.txt"}},
                {"name": "Glob", "args": {"pattern": "*"}},
            ]
        },
        {"text": "done"},
    ]
    provider = ScriptedProvider(load_script(json.dumps(reply * count)))
    config = KodaConfig(retry_base_delay=0.01)
    agent = KodaAgent.create(Path(project))
    session = KodaSession.create(agent, store, provider, TrustMode.AUTO, config)
    print(f"session {session.id}", flush=True)
    commands: asyncio.Queue[EngineCommand] = asyncio.Queue()
    for n in range(count):
        session.add_user_message(f"turn {n}")
        sink = CollectingSink()
        await session.run_turn(config, [], sink, commands)
        end = sink.events[-1]
        if not isinstance(end, TurnEnd) or end.reason.kind != "complete":
            raise SystemExit(f"turn {n} ended badly: {end}")
    store.close()
    print(f"done {count}", flush=True)


def read(db: Path, seconds: float) -> None:
    store = Store.open(db)
    deadline = time.monotonic() + seconds
    reads = 0
    while time.monotonic() < deadline:
        for summary in store.sessions.list():
            store.messages.load(summary.session.id)
            store.sessions.usage(summary.session.id)
            reads += 1
        store.sessions.latest("/nowhere")
        time.sleep(0.001)
    store.close()
    print(f"done {reads}", flush=True)


def main() -> None:
    db, mode = Path(sys.argv[1]), sys.argv[2]
    wait_for_go(db)
    if mode == "write":
        write(db, sys.argv[3], int(sys.argv[4]))
    elif mode == "turns":
        asyncio.run(turns(db, sys.argv[3], int(sys.argv[4])))
    else:
        read(db, float(sys.argv[3]))


if __name__ == "__main__":
    main()
