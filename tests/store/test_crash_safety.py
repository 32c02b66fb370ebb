"""SIGKILL a real process mid-turn; the database must still give a valid, resumable history."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.commands import EngineCommand
from koda.engine.events import TurnEnd
from koda.engine.history import UNANSWERED_NOTE, build_history
from koda.engine.session import KodaSession
from koda.engine.sink import CollectingSink
from koda.engine.trust import TrustMode
from koda.providers.base import Message
from koda.providers.scripted import ScriptedProvider, load_script
from koda.store import Store

WORKER = Path(__file__).with_name("crash_worker.py")
SLOW_TEXT = {"text": "streaming slowly " * 20, "chunk_size": 3, "delay_ms": 40}

History = Callable[[list[Message]], None]


@dataclass
class Killed:
    session_id: str
    lines: list[str]
    rows_at_kill: int  # rows the worker had committed when it printed its last line


async def run_and_kill(
    tmp_path: Path,
    project: Path,
    script: list[dict[str, Any]],
    kill_at: str,
    nth: int = 1,
    turns: int = 1,
) -> Killed:
    """Start the worker; SIGKILL it at its `nth` `kill_at` line, or `after:<seconds>` of running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        str(tmp_path / "koda.db"),
        str(project),
        json.dumps(script),
        str(turns),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    started = asyncio.Event()
    target = asyncio.Event()

    async def read(stream: asyncio.StreamReader) -> None:
        seen = 0
        while raw := await stream.readline():
            line = raw.decode().strip()
            lines.append(line)
            started.set()
            if line.split()[0] == kill_at:
                seen += 1
                if seen == nth:
                    target.set()

    reader = asyncio.create_task(read(proc.stdout))
    errors = asyncio.create_task(proc.stderr.read())
    try:
        if kill_at.startswith("after:"):
            await asyncio.wait_for(started.wait(), 20)
            await asyncio.sleep(float(kill_at.removeprefix("after:")))
        else:
            waiting = asyncio.create_task(target.wait())
            await asyncio.wait({waiting, reader}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if not target.is_set():
                raise AssertionError(
                    f"worker never printed {kill_at!r}: {lines[-5:]}\n{await errors}"
                )
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await reader  # everything printed before the kill
        stderr = (await errors).decode()
    # 255 is asyncio's "status unknown": with PIDs reused across a long test run, a stale
    # subprocess.Popen elsewhere in this process can reap the killed worker first.
    assert proc.returncode in (-signal.SIGKILL, 255), f"worker exited {proc.returncode}:\n{stderr}"
    assert "Traceback" not in stderr and "finished" not in lines, stderr
    session_id = lines[0].split()[1]
    counts = [int(line.split()[1]) for line in lines[1:] if line.split()[-1].isdigit()]
    return Killed(session_id, lines, counts[-1] if counts else 0)


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


async def resume_and_run(store: Store, project: Path, session_id: str) -> ScriptedProvider:
    row = store.sessions.get(session_id)
    assert row is not None
    provider = ScriptedProvider(load_script('[{"text": "picking up where we left off"}]'))
    config = KodaConfig(retry_base_delay=0.01)
    session = KodaSession.resume(
        KodaAgent.create(project), store, provider, row, TrustMode.AUTO, config
    )
    session.add_user_message("please continue")
    sink = CollectingSink()
    commands: asyncio.Queue[EngineCommand] = asyncio.Queue()
    await asyncio.wait_for(session.run_turn(config, [], sink, commands), 10)
    end = sink.events[-1]
    assert isinstance(end, TurnEnd) and end.reason.kind == "complete", sink.events
    return provider


async def check_after_kill(
    tmp_path: Path, project: Path, killed: Killed, check_history: History
) -> tuple[Store, list[Message]]:
    db = tmp_path / "koda.db"
    assert integrity(db) == "ok"
    store = Store.open(db)
    rows = store.messages.load(killed.session_id, include_incomplete=True)
    assert len(rows) >= killed.rows_at_kill, "rows committed before the kill are gone"
    history = build_history(store.messages.load(killed.session_id))
    check_history(history)
    provider = await resume_and_run(store, project, killed.session_id)
    sent = provider.requests[0].messages
    check_history(sent)
    # The resumed request is the repaired history plus the new prompt (joined to a trailing
    # user message, if the killed turn never answered it).
    expected = [(m.role, m.content, m.tool_call_id) for m in history]
    if expected and expected[-1][0] == "user":
        expected[-1] = ("user", f"{expected[-1][1]}\n\nplease continue", None)
    else:
        expected.append(("user", "please continue", None))
    assert [(m.role, m.content, m.tool_call_id) for m in sent] == expected
    return store, history


async def test_kill_during_streaming(tmp_path: Path, project: Path, check_history: History) -> None:
    killed = await run_and_kill(tmp_path, project, [SLOW_TEXT], "text_delta", nth=3)
    store, history = await check_after_kill(tmp_path, project, killed, check_history)
    try:
        rows = store.messages.load(killed.session_id, include_incomplete=True)
        assert [(r.role, r.content) for r in rows[:1]] == [("user", "prompt 0")]
        assert [(m.role, m.content) for m in history] == [("user", "prompt 0")]
    finally:
        store.close()


async def test_kill_during_a_tool(tmp_path: Path, project: Path, check_history: History) -> None:
    script = [
        {
            "text": "Running it.",
            "tool_calls": [
                {"id": "b1", "name": "Bash", "args": {"command": "echo started; sleep 5"}}
            ],
        }
    ]
    killed = await run_and_kill(tmp_path, project, script, "tool_output_line")
    store, history = await check_after_kill(tmp_path, project, killed, check_history)
    try:
        assert [m.role for m in history] == ["user", "assistant", "tool"]
        assert history[1].tool_calls[0].id == "b1"
        assert history[2].tool_call_id == "b1" and history[2].content == UNANSWERED_NOTE
        assert not [r for r in store.messages.load(killed.session_id) if r.role == "tool"]
    finally:
        store.close()


async def test_kill_right_after_a_tool_result(
    tmp_path: Path, project: Path, check_history: History
) -> None:
    script = [
        {"tool_calls": [{"id": "r1", "name": "Read", "args": {"path": "hello.txt"}}]},
        {**SLOW_TEXT, "first_delay_ms": 3000},
    ]
    killed = await run_and_kill(tmp_path, project, script, "tool_call_result")
    assert killed.rows_at_kill == 3
    store, history = await check_after_kill(tmp_path, project, killed, check_history)
    try:
        assert [m.role for m in history] == ["user", "assistant", "tool"]
        assert "hello world" in history[2].content
    finally:
        store.close()


async def test_kill_between_two_calls_of_one_reply(
    tmp_path: Path, project: Path, check_history: History
) -> None:
    script = [
        {
            "tool_calls": [
                {"id": "r1", "name": "Read", "args": {"path": "hello.txt"}},
                {"id": "b2", "name": "Bash", "args": {"command": "echo go; sleep 5"}},
                {"id": "r3", "name": "Read", "args": {"path": "src/app.py"}},
            ]
        }
    ]
    killed = await run_and_kill(tmp_path, project, script, "tool_output_line")
    store, history = await check_after_kill(tmp_path, project, killed, check_history)
    try:
        tools = [
            (m.tool_call_id, m.content == UNANSWERED_NOTE) for m in history if m.role == "tool"
        ]
        assert tools == [("r1", False), ("b2", True), ("r3", True)]
    finally:
        store.close()


async def test_kill_in_a_later_turn_keeps_earlier_turns(
    tmp_path: Path, project: Path, check_history: History
) -> None:
    script = [
        {"tool_calls": [{"id": "a", "name": "Read", "args": {"path": "hello.txt"}}]},
        {"text": "first answer"},
        {"text": "second answer"},
        SLOW_TEXT,
    ]
    killed = await run_and_kill(tmp_path, project, script, "text_delta", nth=5, turns=3)
    store, history = await check_after_kill(tmp_path, project, killed, check_history)
    try:
        assert [(m.role, m.content) for m in history if m.role != "tool"] == [
            ("user", "prompt 0"),
            ("assistant", ""),
            ("assistant", "first answer"),
            ("user", "prompt 1"),
            ("assistant", "second answer"),
            ("user", "prompt 2"),
        ]
    finally:
        store.close()


@pytest.mark.parametrize("nth", [7, 23, 41])
async def test_kill_at_arbitrary_moments_of_a_busy_session(
    tmp_path: Path, project: Path, check_history: History, nth: int
) -> None:
    # Many short turns with tool calls: the kill lands among frequent writes.
    turn = [
        {
            "tool_calls": [
                {"name": "Read", "args": {"path": "hello.txt"}},
                {"name": "Glob", "args": {"pattern": "*"}},
            ]
        },
        {"text": "ok"},
    ]
    script = turn * 30
    killed = await run_and_kill(tmp_path, project, script, "tool_call_result", nth=nth, turns=30)
    store, _ = await check_after_kill(tmp_path, project, killed, check_history)
    store.close()


@pytest.mark.parametrize("seconds", [0.05, 0.15, 0.3])
async def test_kill_after_a_delay_in_a_busy_session(
    tmp_path: Path, project: Path, check_history: History, seconds: float
) -> None:
    turn = [
        {
            "tool_calls": [
                {"name": "Read", "args": {"path": "hello.txt"}},
                {"name": "Bash", "args": {"command": "true"}},
            ]
        },
        {"text": "ok " * 50, "chunk_size": 5},
    ]
    killed = await run_and_kill(tmp_path, project, turn * 200, f"after:{seconds}", turns=200)
    assert "finished" not in killed.lines, "the worker finished before the kill; make it busier"
    store, _ = await check_after_kill(tmp_path, project, killed, check_history)
    store.close()
