"""Signatures stay with the API that made them, so switching provider keeps history valid."""

from __future__ import annotations

from koda.engine.signatures import for_wire, tag, tag_calls
from koda.providers.base import Message, ToolCall


def test_a_provider_gets_back_only_its_own_signatures() -> None:
    calls = tag_calls([ToolCall("c1", "Read", {"path": "a"}, signature="gsig")], "gemini")
    history = [
        Message(role="user", content="hi"),
        Message(
            role="assistant", content="a", thinking="t", thinking_signature=tag("asig", "anthropic")
        ),
        Message(role="assistant", content="", tool_calls=calls),
        Message(role="tool", content="x", tool_call_id="c1", tool_name="Read"),
    ]
    to_anthropic = for_wire(history, "anthropic")
    assert to_anthropic[1].thinking_signature == "asig"
    assert to_anthropic[2].tool_calls[0].signature is None
    to_gemini = for_wire(history, "gemini")
    assert to_gemini[1].thinking_signature is None
    assert to_gemini[2].tool_calls[0].signature == "gsig"
    assert to_gemini[2].tool_calls[0].id == "c1"
    # The stored history itself is left as it was.
    assert history[1].thinking_signature == "anthropic:asig"


def test_messages_without_signatures_are_passed_as_they_are() -> None:
    history = [Message(role="user", content="hi"), Message(role="assistant", content="yo")]
    assert all(a is b for a, b in zip(for_wire(history, "openai"), history, strict=True))
