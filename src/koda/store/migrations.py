"""Versioned schema migrations, applied in order and recorded in PRAGMA user_version."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: sessions, messages, metadata, owned files, settings.
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT,
        project_root TEXT NOT NULL,
        agent TEXT NOT NULL DEFAULT 'main',
        mode TEXT NOT NULL,
        provider TEXT,
        model TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        accessed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    CREATE INDEX idx_sessions_project ON sessions(project_root, accessed_at DESC);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        content TEXT NOT NULL DEFAULT '',
        thinking TEXT,
        thinking_signature TEXT,
        tool_calls TEXT,
        tool_call_id TEXT,
        tool_name TEXT,
        tool_ok INTEGER,
        full_output TEXT,
        images TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        thinking_tokens INTEGER,
        cost_usd REAL,
        agent TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        completed_at TEXT,
        compacted_at TEXT
    );
    CREATE INDEX idx_messages_session ON messages(session_id, id);
    CREATE TABLE session_metadata (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (session_id, key)
    );
    CREATE TABLE owned_files (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (session_id, path)
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    );
    """,
    # 2: full-text search over every message, compacted ones and full command outputs included.
    # External content: the text lives once, in messages; the index is kept in step by triggers.
    # Only edits to the indexed columns touch the index (compaction only sets compacted_at).
    # tool_calls is left out: it carries opaque signatures that would bloat the index.
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, full_output,
        content = 'messages', content_rowid = 'id',
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content, full_output)
        VALUES (new.id, new.content, new.full_output);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content, full_output)
        VALUES ('delete', old.id, old.content, old.full_output);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, full_output ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content, full_output)
        VALUES ('delete', old.id, old.content, old.full_output);
        INSERT INTO messages_fts (rowid, content, full_output)
        VALUES (new.id, new.content, new.full_output);
    END;
    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(Exception):
    pass


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date; each step commits atomically with its version bump."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"the database was written by a newer Koda (schema {current}, this one knows "
            f"{SCHEMA_VERSION}); upgrade Koda or set KODA_HOME to another folder"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                conn.execute("ROLLBACK")
                continue
            for statement in _split(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _split(script: str) -> list[str]:
    """The statements of a script; a trigger body's inner `;` does not end its statement."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip())
    return statements
