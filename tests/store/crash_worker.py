"""Runs Koda turns in a child process so a test can SIGKILL it at a chosen moment.

Usage: crash_worker.py DB PROJECT SCRIPT_JSON TURNS

Prints `session <id>` first, then one line per engine event: `<event type> <stored rows>`, where
the row count is read after the event, so every row it counts was committed before the line.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.commands import EngineCommand
from koda.engine.events import EngineEvent
from koda.engine.session import KodaSession
from koda.engine.trust import TrustMode
from koda.providers.scripted import ScriptedProvider, load_script
from koda.store import Store


class PrintingSink:
    def __init__(self, store: Store, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    def emit(self, event: EngineEvent) -> None:
        rows = self.store.messages.count(self.session_id)
        sys.stdout.write(f"{event.TYPE} {rows}\n")
        sys.stdout.flush()


async def main(db_path: str, project: str, script: str, turns: int) -> None:
    store = Store.open(Path(db_path))
    config = KodaConfig(retry_base_delay=0.01)
    provider = ScriptedProvider(load_script(script))
    session = KodaSession.create(
        KodaAgent.create(Path(project)), store, provider, TrustMode.AUTO, config
    )
    print(f"session {session.id}", flush=True)
    sink = PrintingSink(store, session.id)
    commands: asyncio.Queue[EngineCommand] = asyncio.Queue()
    for n in range(turns):
        session.add_user_message(f"prompt {n}")
        await session.run_turn(config, [], sink, commands)
    print("finished", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
