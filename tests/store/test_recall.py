"""Full-text recall: the FTS5 index follows every insert, edit, compaction and delete."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from koda.store import Store
from koda.store.migrations import MIGRATIONS, SCHEMA_VERSION, _split
from koda.store.recall import FtsQuery, fts_query


def _search(store: Store, text: str, session_id: str, limit: int = 10) -> list[int]:
    hits = store.recall.search(_q(text), session_id=session_id, limit=limit)
    return [h.message_id for h in hits]


def _q(text: str) -> FtsQuery:
    query = fts_query(text)
    assert query is not None
    return query


def _integrity(store: Store) -> None:
    # Raises if the index and the messages table disagree.
    store.conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")


def test_migration_creates_the_index_and_its_triggers(store: Store) -> None:
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert {"messages_fts", "messages_fts_insert", "messages_fts_delete"} <= names
    assert "messages_fts_update" in names
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2


def test_split_keeps_trigger_bodies_whole() -> None:
    statements = _split(MIGRATIONS[1])
    triggers = [s for s in statements if s.startswith("CREATE TRIGGER")]
    assert len(triggers) == 3
    assert all(s.rstrip().endswith("END;") for s in triggers)
    assert all(sqlite3.complete_statement(s) for s in statements)


def test_existing_rows_are_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in _split(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("INSERT INTO sessions (id, project_root, mode) VALUES ('s1', '/p', 'auto')")
    conn.execute("INSERT INTO messages (session_id, role, content) VALUES ('s1', 'user', 'zebra')")
    conn.execute(
        "INSERT INTO messages (session_id, role, content, full_output, compacted_at)"
        " VALUES ('s1', 'tool', 'head', 'the giraffe line', '2024-01-01')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    db = Store.open(path)
    try:
        assert _search(db, "zebra", "s1") == [1]
        assert _search(db, "giraffe", "s1") == [2]
        _integrity(db)
    finally:
        db.close()


def test_content_and_full_output_are_searched(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    store.messages.insert(sid, "user", "Please run the tests")
    tool = store.messages.insert(
        sid,
        "tool",
        "[output shortened]",
        tool_call_id="c1",
        tool_name="Bash",
        full_output="line 1\n" * 500 + "AssertionError: expected 42\n" + "line 2\n" * 500,
    )
    assert _search(store, "AssertionError", sid) == [tool]
    [hit] = store.recall.search(_q('"expected 42"'), session_id=sid)
    assert hit.role == "tool" and hit.tool_name == "Bash" and not hit.compacted
    assert "AssertionError: **expected 42**" in hit.snippet
    assert "\n" not in hit.snippet and len(hit.snippet) < 400


def test_compacted_rows_are_found_and_copies_counted_once(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    old = store.messages.insert(sid, "user", "the walrus protocol is important")
    store.messages.insert(sid, "assistant", "noted")
    kept = store.messages.insert(sid, "user", "and the pelican rule")
    store.messages.insert(sid, "assistant", "ok")
    store.messages.compact(sid, "Summary: a protocol and a rule.", kept)

    [walrus] = store.recall.search(_q("walrus"), session_id=sid)
    assert walrus.message_id == old and walrus.compacted
    # The kept rows were copied after the summary: one hit, not two.
    pelicans = store.recall.search(_q("pelican"), session_id=sid)
    assert len(pelicans) == 1
    assert store.messages.load(sid)[0].content.startswith("Summary")
    _integrity(store)


def test_edits_and_deletes_keep_the_index_in_step(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    mid = store.messages.insert(sid, "user", "original aardvark")
    store.conn.execute("UPDATE messages SET content = 'replaced okapi' WHERE id = ?", (mid,))
    assert _search(store, "aardvark", sid) == []
    assert _search(store, "okapi", sid) == [mid]
    # Changing a column that is not indexed leaves the index alone and still consistent.
    store.conn.execute("UPDATE messages SET compacted_at = 'x' WHERE id = ?", (mid,))
    _integrity(store)
    store.sessions.delete(sid)  # cascades to the messages
    assert store.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    other = store.sessions.create("/p", "auto").id
    assert store.recall.search(_q("okapi"), project_root="/p") == []
    assert _search(store, "okapi", other) == []
    _integrity(store)


def test_scope_is_one_session_or_one_project(store: Store) -> None:
    a = store.sessions.create("/p", "auto").id
    b = store.sessions.create("/p", "auto").id
    c = store.sessions.create("/elsewhere", "auto").id
    ids = {s: store.messages.insert(s, "user", "shared marmot") for s in (a, b, c)}
    assert _search(store, "marmot", a) == [ids[a]]
    in_project = {h.message_id for h in store.recall.search(_q("marmot"), project_root="/p")}
    assert in_project == {ids[a], ids[b]}
    with pytest.raises(ValueError):
        store.recall.search(_q("marmot"))


def test_case_accents_and_word_forms_match(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    mid = store.messages.insert(sid, "assistant", "The Café build FAILED twice")
    for text in ("cafe", "CAFÉ", "failing", "fail*", "build failed", '"cafe build"'):
        assert _search(store, text, sid) == [mid], text
    assert _search(store, '"build cafe"', sid) == []  # a quoted phrase keeps its order


@pytest.mark.parametrize(
    "text",
    [
        '"unbalanced',
        "foo AND",
        "OR",
        "NOT x",
        "NEAR(a b",
        "content:secret",
        "full_output : x",
        "-minus",
        "^caret",
        "a + b",
        "col*umn",
        "*",
        '""""',
        "{x y}",
        "(a OR b",
        "x'); DROP TABLE messages; --",
        "emoji 🎉 text",
        "\x00nul",
    ],
)
def test_user_text_never_breaks_the_query(store: Store, text: str) -> None:
    sid = store.sessions.create("/p", "auto").id
    store.messages.insert(sid, "user", "some text with content and x and b")
    query = fts_query(text)
    if query is not None:
        # No sqlite3.OperationalError, whichever way the words are joined.
        store.recall.search(query, session_id=sid)
        store.recall.search(query, session_id=sid, any_word=True)
    assert store.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1


def test_operator_words_are_searched_literally(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    mid = store.messages.insert(sid, "user", "NOT this OR that, in content: that")
    store.messages.insert(sid, "user", "this alone")
    assert _search(store, "NOT this", sid) == [mid]
    assert _search(store, "content:that", sid) == [mid]


@pytest.mark.parametrize("text", ["", "   ", "!!!", "() [] {}", '""', "* * *", "--", "…"])
def test_text_without_words_is_no_query(text: str) -> None:
    assert fts_query(text) is None


def test_words_become_quoted_terms() -> None:
    query = _q("alpha beta*")
    assert query.every_word == '"alpha" "beta"*'
    assert query.any_word == '"alpha" OR "beta"*'
    assert _q('say "hi there"').terms == ('"say"', '"hi there"')
    assert _q('a"b').terms == ('"a""b"',)
    assert _q("x\0y").terms == ('"x"', '"y"')


def test_limit_and_best_first(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    for i in range(30):
        store.messages.insert(sid, "user", f"filler {i} kiwi")
    dense = store.messages.insert(sid, "user", "kiwi kiwi kiwi kiwi")
    hits = _search(store, "kiwi", sid, limit=5)
    assert len(hits) == 5 and hits[0] == dense


def test_message_in_full_only_within_scope(store: Store) -> None:
    a = store.sessions.create("/p", "auto").id
    b = store.sessions.create("/q", "auto").id
    mid = store.messages.insert(a, "tool", "short", tool_name="Bash", full_output="long " * 100)
    calls = [{"id": "c", "name": "Read", "arguments": {"path": "x.py"}}]
    only_calls = store.messages.insert(a, "assistant", "", tool_calls=calls)
    found = store.recall.message(mid, session_id=a)
    assert found is not None and found.text == "long " * 100 and found.tool_name == "Bash"
    assert store.recall.message(mid, session_id=b) is None
    assert store.recall.message(mid, project_root="/q") is None
    shown = store.recall.message(only_calls, project_root="/p")
    assert shown is not None and "x.py" in shown.text


def test_search_stays_fast_on_a_large_history(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    big = "\n".join(f"row {i} compiling module_{i} ok" for i in range(5000))
    t0 = time.perf_counter()
    with store.transaction():
        for i in range(3000):
            store.conn.execute(
                "INSERT INTO messages (session_id, role, content, full_output)"
                " VALUES (?, 'tool', ?, ?)",
                (sid, f"step {i} done", big if i % 100 == 0 else None),
            )
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = store.recall.search(_q("module_4999"), session_id=sid, limit=10)
    common = store.recall.search(_q("step"), session_id=sid, limit=10)
    search_s = time.perf_counter() - t0
    assert len(hits) == 10 and len(common) == 10
    assert search_s < 1.0, f"two searches took {search_s:.2f} s"
    assert insert_s < 10.0


def test_snippets_of_huge_outputs_full_of_the_word_are_fast(store: Store) -> None:
    # FTS5's snippet() takes minutes here: 60,000 matches in one 2 MB row.
    sid = store.sessions.create("/p", "auto").id
    big = "\n".join(f"row {i} compiling module_{i} ok" for i in range(60_000))
    store.messages.insert(sid, "tool", "x", tool_name="Bash", full_output=big)
    t0 = time.perf_counter()
    [hit] = store.recall.search(_q("row"), session_id=sid)
    [last] = store.recall.search(_q("module_59999"), session_id=sid)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert hit.snippet.startswith("**row** 0 compiling")
    assert "**module_59999**" in last.snippet and last.snippet.startswith("…")


def test_snippet_prefers_a_window_with_every_word(store: Store) -> None:
    sid = store.sessions.create("/p", "auto").id
    text = "alpha " + "filler " * 2000 + "alpha beta together " + "filler " * 2000 + "beta"
    store.messages.insert(sid, "tool", "x", full_output=text)
    [hit] = store.recall.search(_q("alpha beta"), session_id=sid)
    assert "**alpha** **beta** together" in hit.snippet
    [some] = store.recall.search(_q("alpha gamma"), session_id=sid, any_word=True)
    assert some.snippet.startswith("**alpha** filler")
