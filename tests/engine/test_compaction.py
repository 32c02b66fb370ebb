"""Context overflow: compaction and one retry; pre-flight compaction; what the store keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from koda.engine.events import Info, ReplyDiscarded, TextDelta, TurnEnd, Usage
from koda.engine.history import build_history
from koda.engine.sink import CollectingSink
from koda.providers.base import ModelCapabilities, TokenUsage
from koda.providers.scripted import ScriptedProvider

if TYPE_CHECKING:
    from conftest import Harness


def end(sink: CollectingSink) -> TurnEnd:
    [last] = sink.of_type(TurnEnd)
    return last


async def earlier_turns(harness: Harness, session: Any) -> None:
    for i in range(3):
        session.provider._replies.insert(session.provider._next, _reply(f"answer {i}"))
        await harness.turn(session, f"question {i}")


def _reply(text: str) -> Any:
    from koda.providers.scripted import ScriptedReply

    return ScriptedReply(text=text)


async def test_overflow_compacts_and_retries_once(harness: Harness) -> None:
    session = harness.session([])
    await earlier_turns(harness, session)
    provider = session.provider
    assert isinstance(provider, ScriptedProvider)
    from koda.providers.scripted import ScriptedReply

    provider._replies.extend(
        [
            ScriptedReply(error="context_overflow", message="prompt is 300000 tokens"),
            ScriptedReply(text="- the user asked three questions"),  # the summary
            ScriptedReply(text="fits now"),
        ]
    )
    sink = await harness.turn(session, "question 3")
    assert end(sink).reason.kind == "complete"
    assert sink.text().endswith("fits now")
    assert any("Compacted" in i.message for i in sink.of_type(Info))

    summary_request, retried = provider.requests[-2], provider.requests[-1]
    assert summary_request.tools == []
    assert "question 0" in summary_request.messages[0].content
    sent = [(m.role, m.content) for m in retried.messages]
    assert len(sent) == 1 and sent[0][0] == "user"
    assert "three questions" in sent[0][1] and sent[0][1].endswith("question 3")

    # The store keeps every old row, marked compacted; the live history is the short one.
    all_rows = harness.store.conn.execute(
        "SELECT COUNT(*), SUM(compacted_at IS NOT NULL) FROM messages WHERE session_id = ?",
        (session.id,),
    ).fetchone()
    assert all_rows[1] >= 7
    live = build_history(harness.store.messages.load(session.id))
    assert [m.role for m in live] == ["user", "assistant"]


async def test_a_second_overflow_in_the_same_turn_is_a_clear_error(harness: Harness) -> None:
    session = harness.session([])
    await earlier_turns(harness, session)
    from koda.providers.scripted import ScriptedReply

    session.provider._replies.extend(  # type: ignore[attr-defined]
        [
            ScriptedReply(error="context_overflow", message="too long"),
            ScriptedReply(text="summary"),
            ScriptedReply(error="context_overflow", message="still too long"),
        ]
    )
    sink = await harness.turn(session, "question 3")
    reason = end(sink).reason
    assert reason.kind == "error" and reason.message is not None
    assert "after compaction" in reason.message and "still too long" in reason.message


async def test_nearly_full_context_compacts_before_sending(harness: Harness) -> None:
    class Small(ScriptedProvider):
        def capabilities(self, model: str) -> ModelCapabilities:
            return ModelCapabilities(context_window=2000, max_output_tokens=500)

    from koda.providers.scripted import load_script

    script = [
        {"text": "first", "usage": {"prompt": 1900, "completion": 10}},
        {"text": "the summary"},
        {"text": "second"},
    ]
    import json

    session = harness.session([])
    session.provider = Small(load_script(json.dumps(script)))
    await harness.turn(session, "one")
    sink = await harness.turn(session, "two")
    assert end(sink).reason.kind == "complete"
    assert sink.text() == "second"
    last = session.provider.requests[-1]  # type: ignore[attr-defined]
    assert last.max_tokens == 500, "the output cap follows the model's limit"
    assert "the summary" in last.messages[0].content


async def test_a_broken_off_reply_is_discarded_before_the_retry(harness: Harness) -> None:
    session = harness.session(
        [{"text": "half an ans", "error": "network"}, {"text": "a whole answer"}]
    )
    sink = await harness.turn(session, "hi")
    assert end(sink).reason.kind == "complete"
    kinds = [type(e) for e in sink.events if isinstance(e, TextDelta | ReplyDiscarded)]
    assert ReplyDiscarded in kinds
    rows = harness.store.messages.load(session.id, include_incomplete=True)
    assert [r.content for r in rows if r.role == "assistant"] == ["a whole answer"]


async def test_usage_carries_the_provider_cost(harness: Harness) -> None:
    class Priced(ScriptedProvider):
        def cost_usd(self, model: str, usage: TokenUsage) -> float | None:
            return usage.prompt * 0.001

    from koda.providers.scripted import load_script

    session = harness.session([])
    session.provider = Priced(load_script('[{"text": "x", "usage": {"prompt": 100}}]'))
    sink = await harness.turn(session, "hi")
    [usage] = sink.of_type(Usage)
    assert usage.cost_usd == 0.1
    totals = harness.store.sessions.usage(session.id)
    assert totals.cost_usd == 0.1 and totals.unpriced_turns == 0
