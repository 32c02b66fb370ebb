"""build_history: stored rows become a provider-valid history, with each repair checked alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from koda.engine.history import UNANSWERED_NOTE, build_history, to_message, tool_call_to_json
from koda.providers.base import ImageData, Message, ToolCall
from koda.store import Store

History = Callable[[list[Message]], None]


@pytest.fixture
def sid(store: Store) -> str:
    return store.sessions.create("/proj", "safe").id


def call(id: str, name: str = "Read", **args: Any) -> dict[str, Any]:
    return {"id": id, "name": name, "arguments": args or {"path": "a.txt"}}


def history(store: Store, sid: str) -> list[Message]:
    return build_history(store.messages.load(sid))


def shape(messages: list[Message]) -> list[tuple[str, str, str | None]]:
    return [(m.role, m.content, m.tool_call_id) for m in messages]


def test_plain_exchange_is_unchanged(store: Store, sid: str, check_history: History) -> None:
    store.messages.insert(sid, "user", "hi")
    store.messages.insert(sid, "assistant", "hello", thinking="t", thinking_signature="sig")
    store.messages.insert(sid, "user", "bye")
    got = history(store, sid)
    check_history(got)
    assert shape(got) == [("user", "hi", None), ("assistant", "hello", None), ("user", "bye", None)]
    assert got[1].thinking == "t"
    assert got[1].thinking_signature == "sig"


def test_tool_round_trip_keeps_calls_and_results(
    store: Store, sid: str, check_history: History
) -> None:
    store.messages.insert(sid, "user", "read it")
    store.messages.insert(
        sid, "assistant", "", tool_calls=[call("c1"), call("c2", "Glob", pattern="*")]
    )
    store.messages.insert(sid, "tool", "one", tool_call_id="c1", tool_name="Read", tool_ok=True)
    store.messages.insert(sid, "tool", "two", tool_call_id="c2", tool_name="Glob", tool_ok=True)
    store.messages.insert(sid, "assistant", "done")
    got = history(store, sid)
    check_history(got)
    assert got[1].tool_calls == [
        ToolCall("c1", "Read", {"path": "a.txt"}),
        ToolCall("c2", "Glob", {"pattern": "*"}),
    ]
    assert [(m.tool_call_id, m.tool_name, m.content) for m in got[2:4]] == [
        ("c1", "Read", "one"),
        ("c2", "Glob", "two"),
    ]


def test_incomplete_rows_are_skipped(store: Store, sid: str, check_history: History) -> None:
    store.messages.insert(sid, "user", "hi")
    store.messages.insert(sid, "assistant", "half a rep", thinking="hm", completed=False)
    rows = store.messages.load(sid, include_incomplete=True)
    assert [r.is_complete for r in rows] == [True, False]
    # Even when the caller loads incomplete rows, build_history leaves them out.
    got = build_history(rows)
    check_history(got)
    assert shape(got) == [("user", "hi", None)]


def test_system_rows_are_skipped(store: Store, sid: str) -> None:
    store.messages.insert(sid, "system", "compaction summary")
    store.messages.insert(sid, "user", "hi")
    assert shape(history(store, sid)) == [("user", "hi", None)]


def test_empty_assistant_reply_is_dropped_and_users_joined(
    store: Store, sid: str, check_history: History
) -> None:
    store.messages.insert(sid, "user", "first")
    store.messages.insert(sid, "assistant", "", thinking="only thinking")
    store.messages.insert(sid, "user", "second")
    got = history(store, sid)
    check_history(got)
    assert shape(got) == [("user", "first\n\nsecond", None)]


def test_unanswered_calls_at_the_end_get_the_note(
    store: Store, sid: str, check_history: History
) -> None:
    store.messages.insert(sid, "user", "go")
    store.messages.insert(
        sid, "assistant", "", tool_calls=[call("a"), call("b", "Bash", command="x")]
    )
    store.messages.insert(sid, "tool", "ok", tool_call_id="a", tool_name="Read")
    got = history(store, sid)
    check_history(got)
    assert shape(got)[2:] == [("tool", "ok", "a"), ("tool", UNANSWERED_NOTE, "b")]
    assert got[3].tool_name == "Bash"


def test_unanswered_calls_are_closed_before_the_next_message(
    store: Store, sid: str, check_history: History
) -> None:
    store.messages.insert(sid, "user", "go")
    store.messages.insert(sid, "assistant", "", tool_calls=[call("a")])
    store.messages.insert(sid, "user", "are you there?")
    store.messages.insert(sid, "assistant", "yes")
    got = history(store, sid)
    check_history(got)
    assert shape(got) == [
        ("user", "go", None),
        ("assistant", "", None),
        ("tool", UNANSWERED_NOTE, "a"),
        ("user", "are you there?", None),
        ("assistant", "yes", None),
    ]


def test_unanswered_calls_closed_before_a_following_assistant(
    store: Store, sid: str, check_history: History
) -> None:
    store.messages.insert(sid, "user", "go")
    store.messages.insert(sid, "assistant", "", tool_calls=[call("a")])
    store.messages.insert(sid, "assistant", "", tool_calls=[call("b")])
    store.messages.insert(sid, "tool", "b done", tool_call_id="b", tool_name="Read")
    got = history(store, sid)
    check_history(got)
    assert [m.tool_call_id for m in got if m.role == "tool"] == ["a", "b"]


def test_orphan_tool_results_are_dropped(store: Store, sid: str, check_history: History) -> None:
    store.messages.insert(sid, "tool", "orphan at start", tool_call_id="zz", tool_name="Read")
    store.messages.insert(sid, "user", "go")
    store.messages.insert(sid, "tool", "orphan after user", tool_call_id="yy", tool_name="Read")
    store.messages.insert(sid, "assistant", "", tool_calls=[call("a")])
    store.messages.insert(sid, "tool", "wrong id", tool_call_id="nope", tool_name="Read")
    store.messages.insert(sid, "tool", "right", tool_call_id="a", tool_name="Read")
    store.messages.insert(sid, "tool", "duplicate", tool_call_id="a", tool_name="Read")
    got = history(store, sid)
    check_history(got)
    assert shape(got) == [("user", "go", None), ("assistant", "", None), ("tool", "right", "a")]


def test_result_of_an_earlier_turns_call_is_an_orphan(
    store: Store, sid: str, check_history: History
) -> None:
    store.messages.insert(sid, "user", "go")
    store.messages.insert(sid, "assistant", "", tool_calls=[call("a")])
    store.messages.insert(sid, "user", "hurry")
    store.messages.insert(sid, "tool", "late", tool_call_id="a", tool_name="Read")
    got = history(store, sid)
    check_history(got)
    assert [m.content for m in got if m.role == "tool"] == [UNANSWERED_NOTE]


def test_consecutive_user_messages_are_joined_with_images(
    store: Store, sid: str, check_history: History
) -> None:
    store.messages.insert(sid, "user", "look", images=[{"media_type": "image/png", "data": "AAA"}])
    store.messages.insert(sid, "assistant", "partial", completed=False)
    store.messages.insert(
        sid, "user", "and this", images=[{"media_type": "image/jpeg", "data": "BBB"}]
    )
    store.messages.insert(sid, "user", "third")
    got = history(store, sid)
    check_history(got)
    assert len(got) == 1
    assert got[0].content == "look\n\nand this\n\nthird"
    assert got[0].images == [ImageData("image/png", "AAA"), ImageData("image/jpeg", "BBB")]


def test_empty_first_user_message_is_replaced_not_prefixed(store: Store, sid: str) -> None:
    store.messages.insert(sid, "user", "")
    store.messages.insert(sid, "user", "real")
    assert shape(history(store, sid)) == [("user", "real", None)]


def test_compacted_rows_are_not_loaded(store: Store, sid: str) -> None:
    store.messages.insert(sid, "user", "old")
    store.conn.execute("UPDATE messages SET compacted_at = 'x' WHERE session_id = ?", (sid,))
    store.messages.insert(sid, "user", "new")
    assert shape(history(store, sid)) == [("user", "new", None)]


def test_non_object_call_arguments_become_empty(store: Store, sid: str) -> None:
    store.messages.insert(sid, "user", "go")
    store.messages.insert(
        sid, "assistant", "", tool_calls=[{"id": "a", "name": "Read", "arguments": ["x"]}]
    )
    got = history(store, sid)
    assert got[1].tool_calls == [ToolCall("a", "Read", {})]


def test_build_history_does_not_mutate_rows_between_calls(store: Store, sid: str) -> None:
    store.messages.insert(sid, "user", "a")
    store.messages.insert(sid, "user", "b")
    rows = store.messages.load(sid)
    first = build_history(rows)
    second = build_history(rows)
    assert shape(first) == shape(second) == [("user", "a\n\nb", None)]
    assert [r.content for r in rows] == ["a", "b"]


def test_to_message_and_tool_call_json_agree(store: Store, sid: str) -> None:
    tc = ToolCall("c9", "Grep", {"pattern": "x", "glob": "*.py"})
    mid = store.messages.insert(sid, "assistant", "t", tool_calls=[tool_call_to_json(tc)])
    row = next(r for r in store.messages.load(sid) if r.id == mid)
    assert to_message(row).tool_calls == [tc]


def test_empty_rows_give_empty_history() -> None:
    assert build_history([]) == []
