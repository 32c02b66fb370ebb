"""Several real processes on one database: no "database is locked", nothing lost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from koda.engine.history import build_history
from koda.store import Store, StoreError
from koda.store.migrations import SCHEMA_VERSION

WORKER = Path(__file__).with_name("concurrent_worker.py")


def start(db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_together(db: Path, workers: list[list[str]]) -> list[str]:
    """Start the workers, release them at the same moment, and return their outputs."""
    procs = [start(db, *args) for args in workers]
    time.sleep(0.3)  # let them import and reach the starting line
    db.with_name(db.name + ".go").touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert "locked" not in err.lower(), err
        assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{out}\n{err}"
        outputs.append(out)
    return outputs


def check_integrity(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def session_of(output: str) -> str:
    return next(line.split()[1] for line in output.splitlines() if line.startswith("session "))


def test_two_writers_and_a_reader_on_a_fresh_database(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"  # does not exist yet: both writers race to create the schema
    outputs = run_together(
        db, [["write", "/proj/a", "200"], ["write", "/proj/b", "200"], ["read", "1.5"]]
    )
    check_integrity(db)
    store = Store.open(db)
    try:
        for out, project in zip(outputs[:2], ["/proj/a", "/proj/b"], strict=True):
            sid = session_of(out)
            rows = store.messages.load(sid)
            assert len(rows) == 200
            assert [r.content for r in rows[:3]] == ["message 0", "reply 1", "result 2"]
            assert store.sessions.get_metadata(sid, "progress") == "150"
            summary = store.sessions.list(project)
            assert [s.session.id for s in summary] == [sid]
            assert summary[0].message_count == 200
        assert outputs[2].startswith("done ")
        assert store.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 400
    finally:
        store.close()


def test_two_processes_running_engine_turns(tmp_path: Path, project: Path) -> None:
    db = tmp_path / "engine.db"
    Store.open(db).close()  # an existing database this time
    outputs = run_together(
        db, [["turns", str(project), "40"], ["turns", str(project), "40"], ["read", "1.0"]]
    )
    check_integrity(db)
    store = Store.open(db)
    try:
        for out in outputs[:2]:
            sid = session_of(out)
            rows = store.messages.load(sid)
            assert len(rows) == 40 * 5
            history = build_history(rows)
            assert len(history) == len(rows)
            assert [m.role for m in history[:5]] == [
                "user",
                "assistant",
                "tool",
                "tool",
                "assistant",
            ]
        assert len(store.sessions.list(str(project.resolve()))) == 2
    finally:
        store.close()


def test_many_processes_creating_one_new_database_at_once(tmp_path: Path) -> None:
    # Switching a new file to WAL can fail at once with "database is locked" when several
    # processes open it together; every one of them must still get in.
    for round in range(2):
        db = tmp_path / f"new{round}.db"
        outputs = run_together(db, [["write", f"/p{i}", "10"] for i in range(8)])
        check_integrity(db)
        store = Store.open(db)
        try:
            assert store.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 80
            assert len({session_of(out) for out in outputs}) == 8
        finally:
            store.close()


def test_connections_racing_to_create_a_database(tmp_path: Path) -> None:
    # The same race as above with threads, which makes it frequent enough to catch reliably.
    failures: list[str] = []
    for round in range(150):
        db = tmp_path / f"race{round}.db"
        barrier = threading.Barrier(8)

        def open_at_once(db: Path = db, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                Store.open(db).close()
            except StoreError as exc:
                failures.append(str(exc))

        threads = [threading.Thread(target=open_at_once) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
