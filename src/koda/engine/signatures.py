"""Thinking and thought signatures are only valid for the API that made them.

They are stored tagged with their wire format ("anthropic:…", "gemini:…"); a request carries
only the current provider's own, untagged, so a session can switch provider mid-way.
"""

from __future__ import annotations

import dataclasses

from koda.providers.base import Message, ToolCall


def tag(signature: str | None, wire: str) -> str | None:
    return f"{wire}:{signature}" if signature else None


def own(signature: str | None, wire: str) -> str | None:
    prefix = wire + ":"
    return signature[len(prefix) :] if signature and signature.startswith(prefix) else None


def tag_calls(calls: list[ToolCall], wire: str) -> list[ToolCall]:
    return [
        dataclasses.replace(c, signature=tag(c.signature, wire)) if c.signature else c
        for c in calls
    ]


def for_wire(history: list[Message], wire: str) -> list[Message]:
    """The history as `wire` may see it: its own signatures untagged, others' dropped."""
    out = []
    for m in history:
        if m.thinking_signature or any(c.signature for c in m.tool_calls):
            m = dataclasses.replace(
                m,
                thinking_signature=own(m.thinking_signature, wire),
                tool_calls=[
                    dataclasses.replace(c, signature=own(c.signature, wire)) if c.signature else c
                    for c in m.tool_calls
                ],
            )
        out.append(m)
    return out
