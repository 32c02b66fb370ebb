"""Full-text search over every stored message, compacted ones and full outputs included."""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass

MARK = "**"  # around each matched word in a snippet
TOKENIZER = "porter unicode61 remove_diacritics 2"  # the same as messages_fts (migration 2)
_SNIPPET_TOKENS = 24
_WINDOW_CHARS = 2000
_WINDOWS_PER_BATCH = 32
# A "quoted phrase" or a run of non-space characters, with an optional trailing * for a prefix.
_PIECE = re.compile(r'"([^"]*)"(\*?)|(\S+)')


@dataclass(frozen=True)
class FtsQuery:
    """User text made safe for FTS5: each word or phrase is one quoted FTS5 string."""

    terms: tuple[str, ...]

    @property
    def every_word(self) -> str:
        return " ".join(self.terms)

    @property
    def any_word(self) -> str:
        return " OR ".join(self.terms)


@dataclass(frozen=True)
class RecallHit:
    message_id: int
    session_id: str
    role: str
    tool_name: str | None
    created_at: str
    compacted: bool
    snippet: str


@dataclass(frozen=True)
class RecalledMessage:
    message_id: int
    session_id: str
    role: str
    tool_name: str | None
    created_at: str
    compacted: bool
    text: str  # the full output for a tool result that has one, else the message content


def fts_query(text: str) -> FtsQuery | None:
    """`text` as a query that cannot be an FTS5 syntax error, or None if it has no words.

    Operators, quotes and column filters in user text are searched for, never obeyed; a
    "quoted phrase" stays one phrase and a trailing `*` still asks for a prefix.
    """
    terms: list[str] = []
    # FTS5 reads a string up to its first NUL and then finds it unterminated.
    for m in _PIECE.finditer(text.replace("\0", " ")):
        phrase, star = (m.group(1), m.group(2)) if m.group(3) is None else (m.group(3), "")
        if m.group(3) is not None and phrase.endswith("*"):
            phrase, star = phrase.rstrip("*"), "*"
        # Punctuation alone makes no token in the index; as a term it would match nothing.
        if not any(c.isalnum() for c in phrase):
            continue
        terms.append('"' + phrase.replace('"', '""') + '"' + star)
    return FtsQuery(tuple(terms)) if terms else None


class RecallQueries:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._snippets = _Snippets()

    def search(
        self,
        query: FtsQuery,
        *,
        any_word: bool = False,
        session_id: str | None = None,
        project_root: str | None = None,
        limit: int = 10,
    ) -> list[RecallHit]:
        """Best matches first, in one session or one project; every word must match unless
        `any_word`."""
        where, params = _scope(session_id, project_root)
        match = query.any_word if any_word else query.every_word
        rows = self._conn.execute(
            "SELECT m.id, m.session_id, m.role, m.tool_name, m.created_at,"
            " m.compacted_at IS NOT NULL, m.tool_call_id, m.content"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " JOIN sessions s ON s.id = m.session_id"
            f" WHERE messages_fts MATCH ? AND {where}"
            " ORDER BY messages_fts.rank, m.id DESC LIMIT ?",
            (match, *params, limit * 3),
        ).fetchall()
        hits: list[RecallHit] = []
        seen: set[tuple[object, ...]] = set()
        for r in rows:
            # Compaction copies the rows it keeps; a copy has the same time, role and content.
            key = (r[1], r[2], r[4], r[6], r[7])
            if key in seen:
                continue
            seen.add(key)
            snippet = self._snippets.cut([self._full_output(r[0]), r[7] or ""], query)
            hits.append(RecallHit(r[0], r[1], r[2], r[3], r[4], bool(r[5]), snippet))
            if len(hits) == limit:
                break
        return hits

    def _full_output(self, message_id: int) -> str:
        # Read per hit, not in the search: a full output can be megabytes.
        r = self._conn.execute(
            "SELECT full_output FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return str(r[0]) if r and r[0] else ""

    def message(
        self, message_id: int, *, session_id: str | None = None, project_root: str | None = None
    ) -> RecalledMessage | None:
        """One message in full, if it belongs to the given session or project."""
        where, params = _scope(session_id, project_root)
        r = self._conn.execute(
            "SELECT m.id, m.session_id, m.role, m.tool_name, m.created_at,"
            " m.compacted_at IS NOT NULL, COALESCE(m.full_output, m.content), m.tool_calls"
            " FROM messages m JOIN sessions s ON s.id = m.session_id"
            f" WHERE m.id = ? AND {where}",
            (message_id, *params),
        ).fetchone()
        if r is None:
            return None
        text = r[6] or ""
        if not text and r[7]:
            text = r[7]  # an assistant turn that only called tools: show the calls
        return RecalledMessage(r[0], r[1], r[2], r[3], r[4], bool(r[5]), text)


class _Snippets:
    """Snippets cut by a scratch FTS5 table with the index's tokenizer, a window at a time.

    FTS5's own snippet() slows with the square of the matches in a row: on a 2 MB command
    output full of the searched word it takes minutes. Searched in windows of a few KB, the
    same text takes milliseconds, and the highlighting still agrees with the index.
    """

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(f"CREATE VIRTUAL TABLE w USING fts5(t, tokenize = '{TOKENIZER}')")
        self._lock = threading.Lock()

    def cut(self, texts: list[str], query: FtsQuery) -> str:
        """A one-line snippet of the first text that matches, preferring all words to any."""
        with self._lock:
            for text in texts:
                found = self._first_window(text, query)
                if found is not None:
                    return " ".join(found.split())
        # A phrase split across two windows: show the start, unhighlighted.
        first = next((t for t in texts if t), "")
        return " ".join(first[: _WINDOW_CHARS // 10].split()) + "…"

    def _first_window(self, text: str, query: FtsQuery) -> str | None:
        windows = _windows(text)
        fallback: str | None = None
        for start in range(0, len(windows), _WINDOWS_PER_BATCH):
            batch = windows[start : start + _WINDOWS_PER_BATCH]
            self._conn.execute("DELETE FROM w")
            self._conn.executemany(
                "INSERT INTO w (rowid, t) VALUES (?, ?)",
                ((start + i, window) for i, window in enumerate(batch)),
            )
            found = self._snippet(query.every_word)
            if found is not None:
                return found
            if fallback is None:
                fallback = self._snippet(query.any_word)
        return fallback

    def _snippet(self, match: str) -> str | None:
        r = self._conn.execute(
            f"SELECT rowid, snippet(w, 0, '{MARK}', '{MARK}', '…', {_SNIPPET_TOKENS})"
            " FROM w WHERE w MATCH ? ORDER BY rowid LIMIT 1",
            (match,),
        ).fetchone()
        if r is None:
            return None
        snippet = str(r[1])
        # Only the window's own start counts as the text's start.
        return snippet if r[0] == 0 or snippet.startswith("…") else "…" + snippet


def _windows(text: str) -> list[str]:
    """`text` in pieces of about _WINDOW_CHARS, cut at whitespace so no word is split."""
    windows: list[str] = []
    start = 0
    while start < len(text):
        end = start + _WINDOW_CHARS
        if end < len(text):
            space = text.rfind(" ", start + _WINDOW_CHARS // 2, end)
            newline = text.rfind("\n", start + _WINDOW_CHARS // 2, end)
            end = max(space, newline) if max(space, newline) > 0 else end
        windows.append(text[start:end])
        start = end
    return windows


def _scope(session_id: str | None, project_root: str | None) -> tuple[str, tuple[str, ...]]:
    if session_id is not None:
        return "m.session_id = ?", (session_id,)
    if project_root is not None:
        return "s.project_root = ?", (project_root,)
    raise ValueError("a recall needs a session or a project to search")
