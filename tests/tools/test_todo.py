"""TodoWrite: validation, the list kept in the session's metadata, and the todo_update event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from koda.engine.events import TodoUpdate, ToolCallResult
from koda.store import Store
from koda.tools.base import Effect, ToolContext, ToolError
from koda.tools.catalog import ToolCatalog
from koda.tools.todo import MAX_ITEMS, TodoWrite

if TYPE_CHECKING:
    from conftest import Harness

PLAN = [
    {"content": "Read the parser", "status": "completed"},
    {"content": "Fix the bug", "status": "in_progress"},
    {"content": "Add a test", "status": "pending"},
]


@pytest.fixture
def stored_ctx(ctx: ToolContext, store: Store, root: Path) -> ToolContext:
    ctx.store = store
    ctx.session_id = store.sessions.create(str(root), "auto").id
    return ctx


def saved(ctx: ToolContext) -> Any:
    assert ctx.store is not None
    raw = ctx.store.sessions.get_metadata(ctx.session_id, "todo")
    return None if raw is None else json.loads(raw)


async def test_list_is_stored_and_returned_for_the_event(stored_ctx: ToolContext) -> None:
    result = await TodoWrite().run(stored_ctx, {"todos": PLAN})
    assert result.ok
    assert result.output == (
        'Task list updated. 1 of 3 completed, 1 pending; in progress: "Fix the bug".'
    )
    assert result.meta == {"todo": PLAN}
    assert saved(stored_ctx) == PLAN


async def test_the_new_list_replaces_the_old(stored_ctx: ToolContext) -> None:
    await TodoWrite().run(stored_ctx, {"todos": PLAN})
    done = [{"content": item["content"], "status": "completed"} for item in PLAN]
    result = await TodoWrite().run(stored_ctx, {"todos": done})
    assert result.output == "Task list updated. 3 of 3 completed, 0 pending."
    assert saved(stored_ctx) == done
    cleared = await TodoWrite().run(stored_ctx, {"todos": []})
    assert (cleared.output, cleared.meta, saved(stored_ctx)) == (
        "Task list updated. It is empty.",
        {"todo": []},
        [],
    )


async def test_same_list_again_emits_nothing(stored_ctx: ToolContext) -> None:
    await TodoWrite().run(stored_ctx, {"todos": PLAN})
    again = await TodoWrite().run(stored_ctx, {"todos": [dict(item) for item in PLAN]})
    assert again.output.startswith("Task list unchanged.")
    assert again.meta == {}


async def test_two_in_progress_is_refused_and_nothing_stored(stored_ctx: ToolContext) -> None:
    await TodoWrite().run(stored_ctx, {"todos": PLAN})
    both = [{**item, "status": "in_progress"} for item in PLAN[:2]]
    with pytest.raises(ToolError) as info:
        await TodoWrite().run(stored_ctx, {"todos": both})
    assert str(info.value) == (
        "2 items are in_progress (Read the parser; Fix the bug); only one may be. "
        "Mark the others pending or completed."
    )
    assert saved(stored_ctx) == PLAN


async def test_lists_are_kept_per_session(stored_ctx: ToolContext, store: Store) -> None:
    await TodoWrite().run(stored_ctx, {"todos": PLAN})
    other = store.sessions.create("elsewhere", "auto").id
    assert store.sessions.get_metadata(other, "todo") is None


async def test_without_a_store_the_list_still_reaches_the_engine(ctx: ToolContext) -> None:
    result = await TodoWrite().run(ctx, {"todos": PLAN[:1]})
    assert result.meta == {"todo": PLAN[:1]}


async def test_lenient_forms_models_send(ctx: ToolContext) -> None:
    sent = [
        {"id": "1", "content": "  Fix\n the   bug ", "status": " In_Progress ", "activeForm": "x"}
    ]
    result = await TodoWrite().run(ctx, {"todos": json.dumps(sent)})
    assert result.meta == {"todo": [{"content": "Fix the bug", "status": "in_progress"}]}


@pytest.mark.parametrize(
    ("todos", "problem"),
    [
        (None, "Missing required argument 'todos'"),
        ("not json", "must be a list"),
        ({"content": "x", "status": "pending"}, "must be a list"),
        (["just text"], "Item 1 must be an object"),
        ([{"status": "pending"}], "Item 1 needs a non-empty 'content'"),
        ([{"content": "  ", "status": "pending"}], "Item 1 needs a non-empty 'content'"),
        ([{"content": 5, "status": "pending"}], "Item 1 needs a non-empty 'content'"),
        ([{"content": "a", "status": "pending"}, {"content": "b", "status": "done"}],
         "Item 2 has status 'done'"),
        ([{"content": "a"}], "Item 1 has status None"),
        ([{"content": "a" * 501, "status": "pending"}], "Item 1 is 501 characters"),
        ([{"content": "a", "status": "pending"}] * (MAX_ITEMS + 1), "keep it to 100"),
    ],
)  # fmt: skip
async def test_bad_lists_say_what_to_fix(stored_ctx: ToolContext, todos: Any, problem: str) -> None:
    with pytest.raises(ToolError, match=problem):
        await TodoWrite().run(stored_ctx, {"todos": todos} if todos is not None else {})
    assert saved(stored_ctx) is None


def test_read_only_and_summary() -> None:
    tool = TodoWrite()
    assert tool.effect({"todos": PLAN}) == Effect.READ_ONLY
    assert tool.summary({"todos": PLAN}) == "TodoWrite: 3 items"
    assert tool.summary({"todos": "junk"}) == "TodoWrite: 0 items"


def test_schema_allows_extra_item_keys_and_lists_statuses() -> None:
    item = TodoWrite().parameters["properties"]["todos"]["items"]
    assert "additionalProperties" not in item
    assert item["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]


async def test_engine_emits_todo_update_even_in_plan_mode(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [{"id": "t1", "name": "TodoWrite", "args": {"todos": PLAN}}]},
            {"tool_calls": [{"id": "t2", "name": "TodoWrite", "args": {"todos": PLAN}}]},
            {"text": "planned"},
        ],
        mode="plan",
        catalog=ToolCatalog([TodoWrite()]),
    )
    sink = await harness.turn(session, "plan it")
    assert [r.ok for r in sink.of_type(ToolCallResult)] == [True, True]
    # One event: the second call sent the same list.
    assert [e.items for e in sink.of_type(TodoUpdate)] == [PLAN]
    assert json.loads(harness.store.sessions.get_metadata(session.id, "todo") or "") == PLAN
