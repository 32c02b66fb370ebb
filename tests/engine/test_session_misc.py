"""KodaSession odds and ends: images, mode and provider switches, internal errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from koda.config import KodaConfig
from koda.engine.events import Error, TurnEnd
from koda.engine.trust import TrustMode
from koda.providers.base import ChatRequest, ImageData, ModelCapabilities, StreamChunk, TextChunk

if TYPE_CHECKING:
    from conftest import Harness


class BrokenProvider:
    """A provider with a bug: it fails with something that is not a ProviderError."""

    name = "broken"
    default_model = "broken-1"

    def __init__(self) -> None:
        self.calls = 0

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        self.calls += 1
        yield TextChunk("par")
        raise KeyError("choices")

    async def list_models(self) -> list[str]:
        return [self.default_model]

    def capabilities(self, model: str) -> ModelCapabilities:
        return ModelCapabilities(1000, 100)


async def test_pending_images_are_attached_to_the_last_user_message(harness: Harness) -> None:
    import asyncio

    from koda.engine.commands import EngineCommand
    from koda.engine.sink import CollectingSink

    session = harness.session([{"text": "I see a cat"}])
    session.add_user_message("what is this?", [ImageData("image/png", "iVBOR")])
    sink = CollectingSink()
    queue: asyncio.Queue[EngineCommand] = asyncio.Queue()
    await session.run_turn(KodaConfig(), [ImageData("image/jpeg", "/9j/")], sink, queue)
    end = sink.events[-1]
    assert isinstance(end, TurnEnd) and end.reason.kind == "complete"
    [user] = session.provider.requests[0].messages  # type: ignore[attr-defined]
    assert user.images == [ImageData("image/jpeg", "/9j/")]
    assert harness.store.messages.load(session.id)[0].images == [
        {"media_type": "image/jpeg", "data": "/9j/"}
    ]


async def test_images_given_with_the_message_reach_the_provider(harness: Harness) -> None:
    session = harness.session([{"text": "a chart"}])
    session.add_user_message("look", [ImageData("image/png", "AAAA")])
    session.add_user_message("and tell me")
    sink = await harness.turn(session, None)
    assert isinstance(sink.events[-1], TurnEnd)
    [user] = session.provider.requests[0].messages  # type: ignore[attr-defined]
    assert user.content == "look\n\nand tell me"
    assert user.images == [ImageData("image/png", "AAAA")]


async def test_a_provider_bug_ends_the_turn_with_an_internal_error(harness: Harness) -> None:
    session = harness.session([])
    session.provider = BrokenProvider()
    sink = await harness.turn(session, "hi")
    end = sink.events[-1]
    assert isinstance(end, TurnEnd) and end.reason.kind == "error"
    assert end.reason.message == "internal error: KeyError: 'choices'"
    assert [e.message for e in sink.of_type(Error)] == [end.reason.message]
    assert session.provider.calls == 1  # not retried


async def test_set_mode_is_stored_and_applies_to_the_next_turn(harness: Harness) -> None:
    from koda.engine.events import ActionBlocked

    session = harness.session(
        [
            {
                "tool_calls": [
                    {"id": "w", "name": "Write", "args": {"path": "a.txt", "content": "x"}}
                ]
            },
            {"text": "ok"},
        ]
    )
    session.set_mode(TrustMode.PLAN)
    assert harness.store.sessions.get(session.id).mode == "plan"  # type: ignore[union-attr]
    sink = await harness.turn(session, "write")
    assert sink.of_type(ActionBlocked)
    assert not (harness.project / "a.txt").exists()


async def test_update_provider_keeps_the_history(harness: Harness) -> None:
    session = harness.session([{"text": "first"}])
    await harness.turn(session, "one")
    session.update_provider(KodaConfig(script='[{"text": "second"}]', model="other-model"))
    sink = await harness.turn(session, "two")
    assert sink.text() == "second"
    request = session.provider.requests[0]  # type: ignore[attr-defined]
    assert request.model == "other-model"
    assert [(m.role, m.content) for m in request.messages] == [
        ("user", "one"),
        ("assistant", "first"),
        ("user", "two"),
    ]
    row = harness.store.sessions.get(session.id)
    assert row is not None and (row.provider, row.model) == ("scripted", "other-model")


async def test_request_carries_config_and_system_prompt(harness: Harness) -> None:
    session = harness.session([{"text": "ok"}])
    config = KodaConfig(
        max_tokens=1234, temperature=0.3, thinking_budget=999, reasoning_effort="high"
    )
    await harness.turn(session, "hi", config=config)
    request = session.provider.requests[0]  # type: ignore[attr-defined]
    assert (
        request.max_tokens,
        request.temperature,
        request.thinking_budget,
        request.reasoning_effort,
    ) == (
        1234,
        0.3,
        999,
        "high",
    )
    assert request.model == "scripted"
    assert str(harness.project.resolve()) in request.system
