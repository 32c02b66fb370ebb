"""Opening the database: WAL, busy timeout, foreign keys, migrations."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from koda.store.messages import MessageQueries
from koda.store.migrations import SchemaTooNewError, migrate
from koda.store.recall import RecallQueries
from koda.store.sessions import SessionQueries

BUSY_TIMEOUT_MS = 5000


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (a no-op once the file is WAL), retrying while another process opens it.

    Changing the journal mode can fail with "database is locked" at once, without waiting for
    the busy timeout, when several processes open a new database at the same moment.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class StoreError(Exception):
    """The database could not be opened or used; the message says what to do."""


class Store:
    """One connection to Koda's SQLite file, with its query groups."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.sessions = SessionQueries(conn)
        self.messages = MessageQueries(conn)
        self.recall = RecallQueries(conn)

    @classmethod
    def open(cls, path: Path) -> Store:
        conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
        except (SchemaTooNewError, sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()  # a refused database must not stay open
            if isinstance(exc, SchemaTooNewError):
                raise StoreError(str(exc)) from None
            raise StoreError(f"cannot open the session database at {path}: {exc}") from None
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
