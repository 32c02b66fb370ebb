"""Queries on sessions, their metadata and the files they own."""

from __future__ import annotations

import sqlite3
import uuid

from koda.store.rows import SessionRow, SessionSummary, UsageTotals

_COLUMNS = "id, title, project_root, agent, mode, provider, model, created_at, accessed_at"
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"


class SessionNotFoundError(LookupError):
    pass


class AmbiguousSessionError(LookupError):
    pass


def _row(r: tuple[object, ...]) -> SessionRow:
    return SessionRow(*r)  # type: ignore[arg-type]


class SessionQueries:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def create(
        self,
        project_root: str,
        mode: str,
        provider: str | None = None,
        model: str | None = None,
        agent: str = "main",
    ) -> SessionRow:
        session_id = str(uuid.uuid4())
        self._conn.execute(
            "INSERT INTO sessions (id, project_root, agent, mode, provider, model)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, project_root, agent, mode, provider, model),
        )
        found = self.get(session_id)
        assert found is not None
        return found

    def get(self, session_id: str) -> SessionRow | None:
        r = self._conn.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return _row(r) if r else None

    def find(self, prefix: str) -> SessionRow:
        """The one session whose id starts with `prefix`."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise SessionNotFoundError("an empty session id matches nothing")
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE id LIKE ? ESCAPE '\\' LIMIT 6",
            (escaped + "%",),
        ).fetchall()
        if not rows:
            raise SessionNotFoundError(f"no session id starts with '{prefix}'")
        if len(rows) > 1:
            ids = ", ".join(str(r[0])[:13] for r in rows[:5])
            raise AmbiguousSessionError(
                f"'{prefix}' matches several sessions ({ids}…); give more of the id"
            )
        return _row(rows[0])

    def latest(self, project_root: str) -> SessionRow | None:
        r = self._conn.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE project_root = ? AND agent = 'main'"
            " ORDER BY accessed_at DESC, rowid DESC LIMIT 1",
            (project_root,),
        ).fetchone()
        return _row(r) if r else None

    def list(self, project_root: str | None = None, limit: int = 50) -> list[SessionSummary]:
        where = "WHERE s.agent = 'main'" + (" AND s.project_root = ?" if project_root else "")
        params: tuple[object, ...] = (project_root, limit) if project_root else (limit,)
        rows = self._conn.execute(
            f"SELECT {', '.join('s.' + c for c in _COLUMNS.split(', '))},"
            " COUNT(m.id),"
            " COALESCE(SUM(COALESCE(m.prompt_tokens, 0) + COALESCE(m.completion_tokens, 0)), 0)"
            f" FROM sessions s LEFT JOIN messages m ON m.session_id = s.id {where}"
            " GROUP BY s.id ORDER BY s.accessed_at DESC, s.rowid DESC LIMIT ?",
            params,
        ).fetchall()
        return [SessionSummary(_row(r[:9]), int(r[9]), int(r[10])) for r in rows]

    def delete(self, session_id: str) -> bool:
        cur = self._conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        return cur.rowcount > 0

    def set_title_once(self, session_id: str, title: str) -> bool:
        """Set the title unless one is already there; True if this call set it."""
        cur = self._conn.execute(
            "UPDATE sessions SET title = ? WHERE id = ? AND title IS NULL", (title, session_id)
        )
        return cur.rowcount > 0

    def update(
        self,
        session_id: str,
        *,
        mode: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        self._conn.execute(
            "UPDATE sessions SET mode = COALESCE(?, mode), provider = COALESCE(?, provider),"
            f" model = COALESCE(?, model), accessed_at = {_NOW} WHERE id = ?",
            (mode, provider, model, session_id),
        )

    def touch(self, session_id: str) -> None:
        self._conn.execute(f"UPDATE sessions SET accessed_at = {_NOW} WHERE id = ?", (session_id,))

    def usage(self, session_id: str) -> UsageTotals:
        r = self._conn.execute(
            "SELECT COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0),"
            " COALESCE(SUM(cache_read_tokens),0), COALESCE(SUM(cache_write_tokens),0),"
            " COALESCE(SUM(thinking_tokens),0), SUM(cost_usd),"
            " SUM(cost_usd IS NOT NULL), SUM(cost_usd IS NULL AND prompt_tokens IS NOT NULL)"
            " FROM messages WHERE session_id = ? AND role = 'assistant'",
            (session_id,),
        ).fetchone()
        return UsageTotals(
            prompt=int(r[0]),
            completion=int(r[1]),
            cache_read=int(r[2]),
            cache_write=int(r[3]),
            thinking=int(r[4]),
            cost_usd=r[5],
            priced_turns=int(r[6] or 0),
            unpriced_turns=int(r[7] or 0),
        )

    def get_metadata(self, session_id: str, key: str) -> str | None:
        r = self._conn.execute(
            "SELECT value FROM session_metadata WHERE session_id = ? AND key = ?", (session_id, key)
        ).fetchone()
        return str(r[0]) if r else None

    def set_metadata(self, session_id: str, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO session_metadata (session_id, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT(session_id, key)"
            f" DO UPDATE SET value = excluded.value, updated_at = {_NOW}",
            (session_id, key, value),
        )

    def add_owned_file(self, session_id: str, path: str) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO owned_files (session_id, path) VALUES (?, ?)", (session_id, path)
        )

    def owned_files(self, session_id: str) -> set[str]:
        rows = self._conn.execute(
            "SELECT path FROM owned_files WHERE session_id = ?", (session_id,)
        ).fetchall()
        return {str(r[0]) for r in rows}
