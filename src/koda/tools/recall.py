"""RecallContext: search the whole stored history, including what compaction took out of view."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from typing import Any

from koda.store import Store
from koda.store.recall import FtsQuery, RecalledMessage, RecallHit, fts_query
from koda.tools.args import one_line, opt_bool, opt_int, opt_str, scaled
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.schema import arguments, boolean, integer, string

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
MAX_MESSAGE_CHARS = 10_000


class RecallContext:
    name = "RecallContext"
    description = (
        "Search this session's full history, compacted parts and full command outputs "
        'included. All words must match; "a phrase", prefix*. Gives message ids, roles, '
        "times and snippets with **matches**; id shows one message in full."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            [],
            query=string("Words to search for."),
            limit=integer(f"Max results (default {DEFAULT_LIMIT})."),
            id=integer("Show this message (an id from the results) in full."),
            all_sessions=boolean("Search all of this project's sessions."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        if args.get("id") is not None:
            return f"RecallContext: message #{one_line(args.get('id'))}"
        return f"RecallContext: {one_line(args.get('query', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await asyncio.to_thread(self._run, ctx, args)

    def _run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        query = opt_str(args, "query", "").strip()
        limit = opt_int(args, "limit", DEFAULT_LIMIT, min=1, max=MAX_LIMIT)
        message_id = None if args.get("id") is None else opt_int(args, "id", 0, min=1)
        scope = _Scope.of(ctx, opt_bool(args, "all_sessions", False))
        try:
            if message_id is not None:
                found = scope.store.recall.message(
                    message_id, session_id=scope.session_id, project_root=scope.project_root
                )
                if found is None:
                    raise ToolError(f"No message #{message_id} in {scope.where}.")
                return ToolResult(_render_message(found, query, scaled(ctx, MAX_MESSAGE_CHARS)))
            if not query:
                raise ToolError("Give 'query' (words to search for) or 'id' (a message to show).")
            return ToolResult(_search(scope, query, limit))
        except sqlite3.Error as exc:
            raise ToolError(f"The history search failed: {exc}.") from exc


@dataclass(frozen=True)
class _Scope:
    """Where to search: the current session, or every session of the project."""

    store: Store
    session_id: str | None
    project_root: str | None

    @classmethod
    def of(cls, ctx: ToolContext, all_sessions: bool) -> _Scope:
        if ctx.store is None:
            raise ToolError("The session history is not available here (no session store).")
        if all_sessions:
            return cls(ctx.store, None, str(ctx.project_root))
        if not ctx.session_id:
            raise ToolError("There is no current session to search; set all_sessions to true.")
        return cls(ctx.store, ctx.session_id, None)

    @property
    def where(self) -> str:
        return "this session" if self.session_id else "this project's sessions"


def _search(scope: _Scope, text: str, limit: int) -> str:
    query = fts_query(text)
    if query is None:
        raise ToolError(
            f"The query {text!r} has no words to search for: punctuation alone is not "
            "indexed. Search for words, names or numbers."
        )
    head = f'Results for "{text}" in {scope.where}, best first:'
    hits = _hits(scope, query, limit, any_word=False)
    if not hits and len(query.terms) > 1:
        head = f'No message in {scope.where} has all of "{text}"; these have some of the words:'
        hits = _hits(scope, query, limit, any_word=True)
    if not hits:
        return f'No message in {scope.where} matches "{text}".'
    lines = [head]
    for hit in hits:
        lines += [_heading(hit, with_session=scope.session_id is None), f"  {hit.snippet}"]
    if len(hits) == limit:
        lines.append(f"[Showing the first {limit}; narrow the query or raise limit.]")
    lines.append("Pass id to read a message in full.")
    return "\n".join(lines)


def _hits(scope: _Scope, query: FtsQuery, limit: int, *, any_word: bool) -> list[RecallHit]:
    return scope.store.recall.search(
        query,
        any_word=any_word,
        session_id=scope.session_id,
        project_root=scope.project_root,
        limit=limit,
    )


def _heading(hit: RecallHit | RecalledMessage, *, with_session: bool = False) -> str:
    who = f"{hit.tool_name} output" if hit.role == "tool" and hit.tool_name else hit.role
    parts = [f"#{hit.message_id}", who, hit.created_at[:16].replace("T", " ")]
    if hit.compacted:
        parts.append("compacted")
    if with_session:
        parts.append(f"session {hit.session_id[:8]}")
    return " · ".join(parts)


def _render_message(found: RecalledMessage, query: str, cap: int) -> str:
    text = found.text
    if len(text) <= cap:
        return f"{_heading(found)}\n{text}"
    # Show the part around the first word of the query, when there is one.
    start = 0
    words = [w.strip('"*').lower() for w in query.split()]
    folded = text.lower()
    positions = [p for w in words if w and (p := folded.find(w)) >= 0]
    if positions:
        start = max(0, min(positions) - cap // 4)
    end = min(len(text), start + cap)
    how = "around the first match of the query" if positions else "add query to show a match"
    note = f"[Characters {start + 1}-{end} of {len(text)}; {how}.]"
    return f"{_heading(found)}\n{note}\n{text[start:end]}"
