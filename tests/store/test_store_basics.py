"""The SQLite store: schema, pragmas, sessions, lookups, titles, usage."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from koda.store import Store, StoreError
from koda.store.migrations import SCHEMA_VERSION
from koda.store.sessions import AmbiguousSessionError, SessionNotFoundError

if TYPE_CHECKING:
    from conftest import Harness


def test_migrations_set_user_version_and_tables(store: Store) -> None:
    assert SCHEMA_VERSION >= 1
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "messages", "session_metadata", "owned_files", "kv"} <= tables


def test_pragmas(store: Store) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "koda.db"
    first = Store.open(path)
    sid = first.sessions.create("/p", "safe").id
    first.messages.insert(sid, "user", "kept")
    first.close()
    second = Store.open(path)
    try:
        assert second.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [r.content for r in second.messages.load(sid)] == ["kept"]
    finally:
        second.close()


def test_parent_directory_is_created(tmp_path: Path) -> None:
    db = Store.open(tmp_path / "deep" / "er" / "koda.db")
    db.close()
    assert (tmp_path / "deep" / "er" / "koda.db").exists()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        Store.open(path)
    message = str(info.value)
    assert "newer Koda" in message and str(SCHEMA_VERSION + 5) in message
    # The refused file is left alone.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
    conn.close()


def test_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open the session database"):
        Store.open(blocker / "koda.db")


def test_garbage_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError):
        Store.open(path)


def test_delete_cascades_messages_metadata_and_files(store: Store) -> None:
    keep = store.sessions.create("/p", "safe").id
    gone = store.sessions.create("/p", "safe").id
    for sid in (keep, gone):
        store.messages.insert(sid, "user", "hi")
        store.messages.insert(sid, "assistant", "yo")
        store.sessions.set_metadata(sid, "k", "v")
        store.sessions.add_owned_file(sid, "/p/f")
    assert store.sessions.delete(gone)
    assert not store.sessions.delete(gone)
    assert store.sessions.get(gone) is None
    for table in ("messages", "session_metadata", "owned_files"):
        n = store.conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", (gone,)
        ).fetchone()[0]
        assert n == 0, table
    assert store.messages.count(keep) == 2
    assert store.sessions.get_metadata(keep, "k") == "v"
    assert store.sessions.owned_files(keep) == {"/p/f"}


def test_message_for_a_missing_session_is_refused(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.messages.insert("no-such-session", "user", "x")
    # The failed insert left no transaction open.
    sid = store.sessions.create("/p", "safe").id
    store.messages.insert(sid, "user", "fine")
    assert not store.conn.in_transaction


def test_bad_role_is_refused(store: Store) -> None:
    sid = store.sessions.create("/p", "safe").id
    with pytest.raises(sqlite3.IntegrityError):
        store.messages.insert(sid, "wizard", "x")
    assert store.messages.count(sid) == 0


def test_message_fields_round_trip(store: Store) -> None:
    sid = store.sessions.create("/p", "safe").id
    mid = store.messages.insert(
        sid,
        "assistant",
        "text ✓",
        thinking="th",
        thinking_signature="sig",
        tool_calls=[{"id": "c", "name": "Read", "arguments": {"path": "a"}}],
        usage={"prompt": 1, "completion": 2, "cache_read": 3, "cache_write": 4, "thinking": 5},
        cost_usd=0.5,
        agent="child",
    )
    tid = store.messages.insert(
        sid,
        "tool",
        "out",
        tool_call_id="c",
        tool_name="Read",
        tool_ok=False,
        full_output="long out",
    )
    rows = {r.id: r for r in store.messages.load(sid)}
    a, t = rows[mid], rows[tid]
    assert (a.content, a.thinking, a.thinking_signature, a.cost_usd, a.agent) == (
        "text ✓",
        "th",
        "sig",
        0.5,
        "child",
    )
    assert a.tool_calls == [{"id": "c", "name": "Read", "arguments": {"path": "a"}}]
    assert a.usage == {
        "prompt": 1,
        "completion": 2,
        "cache_read": 3,
        "cache_write": 4,
        "thinking": 5,
    }
    assert a.is_complete and a.created_at.endswith("Z")
    assert (t.tool_call_id, t.tool_name, t.tool_ok, t.full_output) == (
        "c",
        "Read",
        False,
        "long out",
    )
    assert store.messages.last_assistant_text(sid) == "text ✓"


def test_images_and_last_user(store: Store) -> None:
    sid = store.sessions.create("/p", "safe").id
    assert store.messages.last_user_id(sid) is None
    store.messages.insert(sid, "user", "a")
    last = store.messages.insert(sid, "user", "b")
    assert store.messages.last_user_id(sid) == last
    store.messages.add_images(last, [{"media_type": "image/png", "data": "AA"}])
    assert store.messages.load(sid)[-1].images == [{"media_type": "image/png", "data": "AA"}]


def test_incomplete_rows_only_on_request(store: Store) -> None:
    sid = store.sessions.create("/p", "safe").id
    store.messages.insert(sid, "user", "q")
    store.messages.insert(sid, "assistant", "half", completed=False)
    assert [r.content for r in store.messages.load(sid)] == ["q"]
    rows = store.messages.load(sid, include_incomplete=True)
    assert [(r.content, r.completed_at is None) for r in rows] == [("q", False), ("half", True)]
    assert store.messages.last_assistant_text(sid) is None
    assert store.messages.count(sid) == 2


def test_find_by_prefix(store: Store) -> None:
    rows = [store.sessions.create("/p", "safe") for _ in range(3)]
    # Force known ids so the prefixes are predictable.
    ids = ["abc12345-0000", "abc99999-0000", "def00000-0000"]
    for row, new in zip(rows, ids, strict=True):
        store.conn.execute("UPDATE sessions SET id = ? WHERE id = ?", (new, row.id))
    assert store.sessions.find("def").id == "def00000-0000"
    assert store.sessions.find("  ABC1 ").id == "abc12345-0000"
    assert store.sessions.find("abc99999-0000").id == "abc99999-0000"
    with pytest.raises(AmbiguousSessionError, match="several"):
        store.sessions.find("abc")
    with pytest.raises(SessionNotFoundError):
        store.sessions.find("zzz")
    with pytest.raises(SessionNotFoundError):
        store.sessions.find("   ")
    # LIKE wildcards in the prefix are taken literally.
    for wildcard in ("%", "_", "abc%", "a_c", "%0000", "\\"):
        with pytest.raises(SessionNotFoundError):
            store.sessions.find(wildcard)


def test_find_with_literal_wildcard_characters(store: Store) -> None:
    row = store.sessions.create("/p", "safe")
    store.conn.execute("UPDATE sessions SET id = 'we%ird_id' WHERE id = ?", (row.id,))
    other = store.sessions.create("/p", "safe")
    store.conn.execute("UPDATE sessions SET id = 'weXirdYid' WHERE id = ?", (other.id,))
    assert store.sessions.find("we%ird_").id == "we%ird_id"
    assert store.sessions.find("weX").id == "weXirdYid"


def test_list_and_latest_are_per_project(store: Store) -> None:
    a1 = store.sessions.create("/a", "safe").id
    b1 = store.sessions.create("/b", "safe").id
    a2 = store.sessions.create("/a", "auto").id
    store.sessions.create("/a", "safe", agent="child")
    time.sleep(0.002)  # accessed_at has millisecond resolution
    store.messages.insert(a1, "user", "x")
    store.messages.insert(a1, "assistant", "y", usage={"prompt": 10, "completion": 5})
    assert store.sessions.latest("/a") is not None
    assert store.sessions.latest("/a").id == a1  # type: ignore[union-attr]  # touched last
    assert store.sessions.latest("/b").id == b1  # type: ignore[union-attr]
    assert store.sessions.latest("/nowhere") is None
    listed = store.sessions.list("/a")
    assert [s.session.id for s in listed] == [a1, a2]
    assert (listed[0].message_count, listed[0].total_tokens) == (2, 15)
    assert (listed[1].message_count, listed[1].total_tokens) == (0, 0)
    assert {s.session.id for s in store.sessions.list()} == {a1, a2, b1}
    assert len(store.sessions.list(limit=1)) == 1
    time.sleep(0.002)
    store.sessions.touch(a2)
    assert store.sessions.latest("/a").id == a2  # type: ignore[union-attr]


def test_set_title_once(store: Store) -> None:
    sid = store.sessions.create("/p", "safe").id
    assert store.sessions.get(sid).title is None  # type: ignore[union-attr]
    assert store.sessions.set_title_once(sid, "first")
    assert not store.sessions.set_title_once(sid, "second")
    assert store.sessions.get(sid).title == "first"  # type: ignore[union-attr]


def test_update_mode_provider_model(store: Store) -> None:
    sid = store.sessions.create("/p", "safe", "scripted", "m1").id
    store.sessions.update(sid, mode="auto")
    row = store.sessions.get(sid)
    assert row is not None and (row.mode, row.provider, row.model) == ("auto", "scripted", "m1")
    store.sessions.update(sid, model="m2")
    assert store.sessions.get(sid).model == "m2"  # type: ignore[union-attr]


def test_usage_totals(store: Store) -> None:
    sid = store.sessions.create("/p", "safe").id
    store.messages.insert(sid, "user", "q")
    store.messages.insert(
        sid,
        "assistant",
        "a",
        usage={"prompt": 100, "completion": 20, "cache_read": 7, "thinking": 3},
        cost_usd=0.25,
    )
    store.messages.insert(
        sid, "assistant", "b", usage={"prompt": 50, "completion": 5, "cache_write": 2}
    )
    store.messages.insert(sid, "assistant", "c", usage={"prompt": 1}, cost_usd=0.5)
    store.messages.insert(sid, "tool", "t", tool_call_id="x", usage={"prompt": 1000})
    totals = store.sessions.usage(sid)
    assert (
        totals.prompt,
        totals.completion,
        totals.cache_read,
        totals.cache_write,
        totals.thinking,
    ) == (
        151,
        25,
        7,
        2,
        3,
    )
    assert totals.cost_usd == pytest.approx(0.75)
    assert (totals.priced_turns, totals.unpriced_turns) == (2, 1)
    empty = store.sessions.usage(store.sessions.create("/p", "safe").id)
    assert (empty.prompt, empty.cost_usd, empty.priced_turns) == (0, None, 0)


def test_metadata_upsert(store: Store) -> None:
    sid = store.sessions.create("/p", "safe").id
    assert store.sessions.get_metadata(sid, "k") is None
    store.sessions.set_metadata(sid, "k", "1")
    store.sessions.set_metadata(sid, "k", "2")
    assert store.sessions.get_metadata(sid, "k") == "2"


async def test_title_is_set_once_from_the_first_prompt_without_a_request(harness: Harness) -> None:
    session = harness.session([{"text": "one"}, {"text": "two"}])
    assert not session.title_set
    await harness.turn(session, "  Fix the   flaky test in parser  ")
    provider = session.provider
    assert len(provider.requests) == 1  # type: ignore[attr-defined]
    assert session.title_set
    assert harness.store.sessions.get(session.id).title == "Fix the flaky test in parser"  # type: ignore[union-attr]
    await harness.turn(session, "something else entirely")
    assert len(provider.requests) == 2  # type: ignore[attr-defined]
    assert harness.store.sessions.get(session.id).title == "Fix the flaky test in parser"  # type: ignore[union-attr]


async def test_title_is_not_set_when_the_first_turn_fails(harness: Harness) -> None:
    session = harness.session([{"error": "auth"}])
    await harness.turn(session, "hello")
    assert not session.title_set
    assert harness.store.sessions.get(session.id).title is None  # type: ignore[union-attr]


async def test_resumed_session_keeps_its_title(harness: Harness) -> None:
    from koda.config import KodaConfig
    from koda.engine.session import KodaSession
    from koda.engine.trust import TrustMode

    first = harness.session([{"text": "one"}])
    await harness.turn(first, "original title")
    row = harness.store.sessions.get(first.id)
    assert row is not None
    resumed = KodaSession.resume(
        first.agent,
        harness.store,
        harness.provider([{"text": "two"}]),
        row,
        TrustMode.PLAN,
        KodaConfig(),
    )
    assert resumed.title_set
    await harness.turn(resumed, "a new prompt")
    row = harness.store.sessions.get(first.id)
    assert row is not None and row.title == "original title" and row.mode == "plan"


async def test_usage_totals_after_turns(harness: Harness) -> None:
    session = harness.session(
        [
            {
                "tool_calls": [{"id": "r", "name": "Read", "args": {"path": "hello.txt"}}],
                "usage": {"prompt": 10, "completion": 2},
            },
            {"text": "done", "usage": {"prompt": 30, "completion": 4, "cache_read": 8}},
        ]
    )
    await harness.turn(session, "go")
    totals = harness.store.sessions.usage(session.id)
    assert (totals.prompt, totals.completion, totals.cache_read) == (40, 6, 8)
    assert totals.unpriced_turns == 2


def test_title_from_prompt() -> None:
    from koda.engine.title import MAX_TITLE, title_from_prompt

    assert title_from_prompt("   ") == "Untitled session"
    assert title_from_prompt("a\nb\tc") == "a b c"
    long = title_from_prompt("word " * 40)
    assert long.endswith("…") and len(long) <= MAX_TITLE + 1
    assert title_from_prompt("x" * 100) == "x" * MAX_TITLE + "…"
