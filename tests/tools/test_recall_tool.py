"""RecallContext: searching the stored history as the model does, through the tool."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pytest

from koda.engine.events import ToolCallResult
from koda.store import Store
from koda.tools.base import Effect, ToolContext, ToolError
from koda.tools.catalog import ToolCatalog
from koda.tools.recall import MAX_LIMIT, RecallContext

if TYPE_CHECKING:
    from conftest import Harness


@pytest.fixture
def session_ctx(ctx: ToolContext, store: Store) -> ToolContext:
    sid = store.sessions.create(str(ctx.project_root), "auto").id
    return dataclasses.replace(ctx, store=store, session_id=sid, context_window=100_000)


async def _run(ctx: ToolContext, **args: Any) -> str:
    result = await RecallContext().run(ctx, args)
    assert result.ok
    return result.output


async def _refused(ctx: ToolContext, **args: Any) -> str:
    with pytest.raises(ToolError) as info:
        await RecallContext().run(ctx, args)
    return str(info.value)


def _db(ctx: ToolContext) -> Store:
    assert ctx.store is not None
    return ctx.store


async def test_finds_compacted_messages_and_full_outputs(session_ctx: ToolContext) -> None:
    db, sid = _db(session_ctx), session_ctx.session_id
    early = db.messages.insert(sid, "user", "Use the blue-green deploy script, not the old one.")
    db.messages.insert(sid, "assistant", "Understood.")
    out = db.messages.insert(
        sid,
        "tool",
        "[head and tail only]",
        tool_call_id="b1",
        tool_name="Bash",
        full_output="ok\n" * 3000 + "FAILED test_payment_refund - KeyError: 'currency'\n",
    )
    keep = db.messages.insert(sid, "user", "next")
    db.messages.compact(sid, "Summary: deploys and tests were discussed.", keep)

    found = await _run(session_ctx, query="blue-green deploy")
    assert f"#{early} · user · " in found and "compacted" in found
    assert "**blue-green** **deploy**" in found or "**blue green deploy**" in found.lower()

    failure = await _run(session_ctx, query="test_payment_refund currency")
    assert f"#{out} · Bash output · " in failure
    assert "**test_payment_refund**" in failure and "**currency**" in failure
    assert "Pass id to read a message in full." in failure


async def test_default_scope_is_this_session(session_ctx: ToolContext) -> None:
    db, sid = _db(session_ctx), session_ctx.session_id
    here = db.messages.insert(sid, "user", "the flamingo plan")
    other = db.sessions.create(str(session_ctx.project_root), "auto").id
    there = db.messages.insert(other, "user", "the flamingo budget")
    foreign = db.sessions.create("/some/other/project", "auto").id
    db.messages.insert(foreign, "user", "the flamingo secret")

    mine = await _run(session_ctx, query="flamingo")
    assert f"#{here} " in mine and f"#{there} " not in mine
    everywhere = await _run(session_ctx, query="flamingo", all_sessions=True)
    assert f"#{here} " in everywhere and f"#{there} " in everywhere
    assert f"session {other[:8]}" in everywhere
    assert "secret" not in everywhere  # never another project's sessions
    assert "No message #" in await _refused(session_ctx, id=there)


async def test_no_match_and_some_words_only(session_ctx: ToolContext) -> None:
    db, sid = _db(session_ctx), session_ctx.session_id
    db.messages.insert(sid, "user", "the capybara sleeps")
    assert 'No message in this session matches "narwhal"' in await _run(
        session_ctx, query="narwhal"
    )
    partial = await _run(session_ctx, query="capybara narwhal")
    assert "has all of" in partial and "**capybara**" in partial


@pytest.mark.parametrize("query", ["!!!", "()", "* - +", '""', "…"])
async def test_punctuation_only_is_refused_clearly(session_ctx: ToolContext, query: str) -> None:
    message = await _refused(session_ctx, query=query)
    assert "no words to search for" in message


@pytest.mark.parametrize(
    "query",
    ['"unclosed', "a AND", "NEAR(x", "content:foo", "^start", "x OR", "(", "\x00", "a:b:c"],
)
async def test_query_syntax_in_user_text_is_searched_not_obeyed(
    session_ctx: ToolContext, query: str
) -> None:
    _db(session_ctx).messages.insert(session_ctx.session_id, "user", "a b c foo x start")
    try:
        result = await RecallContext().run(session_ctx, {"query": query})
    except ToolError as exc:  # the only refusal: nothing left to search for
        assert "no words to search for" in str(exc)
    else:
        assert result.ok and "ERROR" not in result.output.upper()


async def test_limit_caps_results_with_a_note(session_ctx: ToolContext) -> None:
    db, sid = _db(session_ctx), session_ctx.session_id
    for i in range(15):
        db.messages.insert(sid, "user", f"lemur number {i}")
    default = await _run(session_ctx, query="lemur")
    assert default.count(" · user · ") == 10 and "[Showing the first 10" in default
    three = await _run(session_ctx, query="lemur", limit="3")
    assert three.count(" · user · ") == 3
    everything = await _run(session_ctx, query="lemur", limit=MAX_LIMIT)
    assert everything.count(" · user · ") == 15 and "[Showing" not in everything


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, "Give 'query'"),
        ({"query": "   "}, "Give 'query'"),
        ({"query": 5}, "must be a string"),
        ({"query": "x", "limit": 0}, "at least 1"),
        ({"query": "x", "limit": 1000}, "at most"),
        ({"query": "x", "limit": "many"}, "must be an integer"),
        ({"id": "abc"}, "must be an integer"),
        ({"id": 0}, "at least 1"),
        ({"query": "x", "all_sessions": "perhaps"}, "must be a boolean"),
    ],
)
async def test_bad_arguments(session_ctx: ToolContext, args: dict[str, Any], expected: str) -> None:
    assert expected in await _refused(session_ctx, **args)


async def test_without_a_store_or_session(ctx: ToolContext, store: Store) -> None:
    assert "not available" in await _refused(ctx, query="x")
    no_session = dataclasses.replace(ctx, store=store)
    assert "no current session" in await _refused(no_session, query="x")
    # A project-wide search needs no session.
    assert "No message" in await _run(no_session, query="x", all_sessions=True)


async def test_id_shows_a_message_in_full_or_around_the_query(session_ctx: ToolContext) -> None:
    db, sid = _db(session_ctx), session_ctx.session_id
    short = db.messages.insert(sid, "tool", "tail", tool_name="Bash", full_output="all of it\n")
    assert (await _run(session_ctx, id=short)).endswith("\nall of it\n")
    huge = "x" * 100_000 + " the needle " + "y" * 100_000
    big = db.messages.insert(sid, "tool", "tail", tool_name="Bash", full_output=huge)
    head = await _run(session_ctx, id=big)
    assert "[Characters 1-10000 of 200012" in head and "needle" not in head
    around = await _run(session_ctx, id=str(big), query="needle")
    assert "needle" in around and len(around) < 11_000
    assert "around the first match of the query" in around


async def test_description_fits_the_budget() -> None:
    tool = RecallContext()
    size = len(json.dumps({"n": tool.name, "d": tool.description, "p": tool.parameters}))
    assert size <= 700
    assert tool.effect({"query": "x"}) == Effect.READ_ONLY
    assert tool.summary({"query": "deploy script"}) == "RecallContext: deploy script"


async def test_the_model_recalls_what_compaction_hid(harness: Harness) -> None:
    catalog = ToolCatalog([RecallContext()])
    call = {"id": "r1", "name": "RecallContext", "args": {"query": "staging password rotation"}}
    session = harness.session([{"tool_calls": [call]}, {"text": "Found it."}], catalog=catalog)
    db = harness.store
    db.messages.insert(session.id, "user", "Remember: staging password rotation is on Fridays.")
    db.messages.insert(session.id, "assistant", "Noted.")
    keep = db.messages.insert(session.id, "user", "ok")
    db.messages.insert(session.id, "assistant", "ok")
    db.messages.compact(session.id, "Summary: nothing about passwords.", keep)

    sink = await harness.turn(session, "when is the rotation?")
    [result] = sink.of_type(ToolCallResult)
    assert result.ok, result.output
    assert "**Fridays**" not in result.output  # only the query words are marked
    assert "**staging** **password** **rotation** is on Fridays" in result.output
    assert "compacted" in result.output
