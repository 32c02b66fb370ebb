"""Retryable provider errors are retried with a warning; others end the turn with a clear error."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from koda.config import KodaConfig
from koda.engine.events import Error, TextDelta, TurnEnd, Warn

if TYPE_CHECKING:
    from conftest import Harness


def end_of(sink: Any) -> TurnEnd:
    end = sink.events[-1]
    assert isinstance(end, TurnEnd)
    return end


def retry_warnings(sink: Any) -> list[str]:
    return [w.message for w in sink.of_type(Warn) if "retrying" in w.message]


async def test_rate_limit_then_text_completes(harness: Harness) -> None:
    session = harness.session(
        [{"error": "rate_limit", "message": "slow down", "retry_after": 0.05}, {"text": "made it"}],
        mode="safe",
    )
    t0 = time.monotonic()
    sink = await harness.turn(session, "hi")
    assert end_of(sink).reason.kind == "complete"
    assert time.monotonic() - t0 >= 0.05
    [warning] = retry_warnings(sink)
    assert "slow down" in warning and "attempt 2 of 5" in warning
    assert not sink.of_type(Error)
    assert sink.text() == "made it"
    requests = session.provider.requests  # type: ignore[attr-defined]
    assert len(requests) == 2
    assert requests[0].messages == requests[1].messages


@pytest.mark.parametrize("kind", ["overloaded", "network"])
async def test_other_retryable_errors_are_retried(harness: Harness, kind: str) -> None:
    session = harness.session([{"error": kind}, {"error": kind}, {"text": "ok"}])
    sink = await harness.turn(session, "hi")
    assert end_of(sink).reason.kind == "complete"
    assert len(retry_warnings(sink)) == 2


async def test_retries_exhausted_end_with_error(harness: Harness) -> None:
    session = harness.session(
        [{"error": "overloaded", "message": "busy"}] * 3 + [{"text": "too late"}]
    )
    config = KodaConfig(retry_attempts=3, retry_base_delay=0.01)
    sink = await harness.turn(session, "hi", config=config)
    end = end_of(sink)
    assert end.reason.kind == "error" and end.reason.message == "busy"
    assert len(retry_warnings(sink)) == 2
    assert len(session.provider.requests) == 3  # type: ignore[attr-defined]


async def test_backoff_doubles_from_the_base_delay(harness: Harness) -> None:
    session = harness.session([{"error": "network"}] * 3 + [{"text": "ok"}])
    t0 = time.monotonic()
    sink = await harness.turn(session, "hi", config=KodaConfig(retry_base_delay=0.05))
    elapsed = time.monotonic() - t0
    assert end_of(sink).reason.kind == "complete"
    assert len(retry_warnings(sink)) == 3
    assert 0.05 + 0.1 + 0.2 <= elapsed < 1.5


async def test_text_streamed_before_a_retryable_error_is_not_stored(harness: Harness) -> None:
    session = harness.session(
        [{"text": "half", "error": "network", "retry_after": 0.01}, {"text": "whole answer"}]
    )
    sink = await harness.turn(session, "hi")
    assert end_of(sink).reason.kind == "complete"
    assert [d.text for d in sink.of_type(TextDelta)][-1] == "whole answer"
    rows = harness.store.messages.load(session.id, include_incomplete=True)
    assert [(r.role, r.content) for r in rows] == [("user", "hi"), ("assistant", "whole answer")]


async def test_context_overflow_is_a_clear_error(harness: Harness) -> None:
    session = harness.session(
        [{"error": "context_overflow", "message": "prompt is 250000 tokens"}, {"text": "x"}]
    )
    sink = await harness.turn(session, "hi")
    end = end_of(sink)
    assert end.reason.kind == "error"
    assert end.reason.message is not None
    assert "context window" in end.reason.message
    assert "prompt is 250000 tokens" in end.reason.message
    assert "new session" in end.reason.message
    assert len(session.provider.requests) == 1  # type: ignore[attr-defined]
    assert [e.message for e in sink.of_type(Error)] == [end.reason.message]


async def test_server_error_is_not_retried(harness: Harness) -> None:
    session = harness.session([{"error": "server"}, {"text": "x"}])
    sink = await harness.turn(session, "hi")
    assert end_of(sink).reason.kind == "error"
    assert end_of(sink).reason.message == "scripted server error"
    assert not retry_warnings(sink)
