"""Queries on the messages of a session."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from koda.store.rows import MessageRow

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
_COLUMNS = (
    "id, session_id, role, content, thinking, thinking_signature, tool_calls, tool_call_id,"
    " tool_name, tool_ok, full_output, images, prompt_tokens, completion_tokens,"
    " cache_read_tokens, cache_write_tokens, thinking_tokens, cost_usd, agent, created_at,"
    " completed_at"
)
_USAGE_KEYS = ("prompt", "completion", "cache_read", "cache_write", "thinking")


def _row(r: tuple[Any, ...]) -> MessageRow:
    usage = {k: int(v) for k, v in zip(_USAGE_KEYS, r[12:17], strict=True) if v is not None}
    return MessageRow(
        id=r[0],
        session_id=r[1],
        role=r[2],
        content=r[3],
        thinking=r[4],
        thinking_signature=r[5],
        tool_calls=json.loads(r[6]) if r[6] else [],
        tool_call_id=r[7],
        tool_name=r[8],
        tool_ok=None if r[9] is None else bool(r[9]),
        full_output=r[10],
        images=json.loads(r[11]) if r[11] else [],
        usage=usage,
        cost_usd=r[17],
        agent=r[18],
        created_at=r[19],
        completed_at=r[20],
    )


class MessageQueries:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert(
        self,
        session_id: str,
        role: str,
        content: str = "",
        *,
        thinking: str | None = None,
        thinking_signature: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        tool_name: str | None = None,
        tool_ok: bool | None = None,
        full_output: str | None = None,
        images: list[dict[str, str]] | None = None,
        usage: dict[str, int] | None = None,
        cost_usd: float | None = None,
        agent: str | None = None,
        completed: bool = True,
    ) -> int:
        """Insert one message and touch its session, in one transaction."""
        u = usage or {}
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            cur = self._conn.execute(
                "INSERT INTO messages (session_id, role, content, thinking, thinking_signature,"
                " tool_calls, tool_call_id, tool_name, tool_ok, full_output, images,"
                " prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens,"
                " thinking_tokens, cost_usd, agent, completed_at)"
                f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, CASE WHEN ? THEN {_NOW} END)",
                (
                    session_id, role, content, thinking, thinking_signature,
                    json.dumps(tool_calls) if tool_calls else None, tool_call_id, tool_name,
                    None if tool_ok is None else int(tool_ok), full_output,
                    json.dumps(images) if images else None,
                    *(u.get(k) for k in _USAGE_KEYS), cost_usd, agent, completed,
                ),
            )  # fmt: skip
            self._conn.execute(
                f"UPDATE sessions SET accessed_at = {_NOW} WHERE id = ?", (session_id,)
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        assert cur.lastrowid is not None
        return cur.lastrowid

    def load(self, session_id: str, *, include_incomplete: bool = False) -> list[MessageRow]:
        """Non-compacted messages in order; incomplete ones only when asked for."""
        where = "session_id = ? AND compacted_at IS NULL"
        if not include_incomplete:
            where += " AND completed_at IS NOT NULL"
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY id", (session_id,)
        ).fetchall()
        return [_row(r) for r in rows]

    def count(self, session_id: str) -> int:
        r = self._conn.execute(
            "SELECT COUNT(*) FROM messages WHERE session_id = ?", (session_id,)
        ).fetchone()
        return int(r[0])

    def first_user_text(self, session_id: str) -> str | None:
        r = self._conn.execute(
            "SELECT content FROM messages WHERE session_id = ? AND role = 'user'"
            " ORDER BY id LIMIT 1",
            (session_id,),
        ).fetchone()
        return str(r[0]) if r else None

    def last_user_text(self, session_id: str) -> str | None:
        r = self._conn.execute(
            "SELECT content FROM messages WHERE session_id = ? AND role = 'user'"
            " AND tool_call_id IS NULL ORDER BY id DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        return str(r[0]) if r else None

    def last_assistant_text(self, session_id: str) -> str | None:
        r = self._conn.execute(
            "SELECT content FROM messages WHERE session_id = ? AND role = 'assistant'"
            " AND completed_at IS NOT NULL AND content != '' ORDER BY id DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        return str(r[0]) if r else None

    def add_images(self, message_id: int, images: list[dict[str, str]]) -> None:
        self._conn.execute(
            "UPDATE messages SET images = ? WHERE id = ?",
            (json.dumps(images), message_id),
        )

    def last_user_id(self, session_id: str) -> int | None:
        r = self._conn.execute(
            "SELECT id FROM messages WHERE session_id = ? AND role = 'user'"
            " ORDER BY id DESC LIMIT 1",
            (session_id,),
        ).fetchone()
        return int(r[0]) if r else None

    def compact(self, session_id: str, summary: str, keep_from_id: int) -> None:
        """Replace the history before `keep_from_id` with `summary`, in one transaction.

        Old rows are only marked compacted: kept for the record and for recall. The rows from
        `keep_from_id` on are copied after the summary, so the history stays in id order; the
        copies carry no usage, so token totals do not count them twice.
        """
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            (last,) = self._conn.execute(
                "SELECT COALESCE(MAX(id), 0) FROM messages WHERE session_id = ?", (session_id,)
            ).fetchone()
            self._conn.execute(
                f"UPDATE messages SET compacted_at = {_NOW}"
                " WHERE session_id = ? AND compacted_at IS NULL AND id <= ?",
                (session_id, last),
            )
            self._conn.execute(
                "INSERT INTO messages (session_id, role, content, completed_at)"
                f" VALUES (?, 'user', ?, {_NOW})",
                (session_id, summary),
            )
            self._conn.execute(
                "INSERT INTO messages (session_id, role, content, thinking, thinking_signature,"
                " tool_calls, tool_call_id, tool_name, tool_ok, full_output, images, agent,"
                " created_at, completed_at)"
                " SELECT session_id, role, content, thinking, thinking_signature, tool_calls,"
                " tool_call_id, tool_name, tool_ok, full_output, images, agent, created_at,"
                " completed_at FROM messages WHERE session_id = ? AND id >= ? AND id <= ?"
                " AND completed_at IS NOT NULL ORDER BY id",
                (session_id, keep_from_id, last),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
