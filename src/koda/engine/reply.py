"""Streaming one model reply: chunks become events, and the reply is assembled as they come."""

from __future__ import annotations

from dataclasses import dataclass, field

from koda.engine.events import TextDelta, TextDone, ThinkingDelta, ThinkingDone, ThinkingStart
from koda.engine.sink import EngineSink
from koda.providers.base import (
    ChatRequest,
    DoneChunk,
    LlmProvider,
    ProviderError,
    TextChunk,
    ThinkingChunk,
    TokenUsage,
    ToolCall,
    ToolCallChunk,
)


@dataclass
class Reply:
    text: str = ""
    thinking: str = ""
    signature: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    stop_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None


async def stream_reply(
    provider: LlmProvider, request: ChatRequest, sink: EngineSink, reply: Reply
) -> None:
    """Fill `reply` from the provider's stream, emitting text and thinking as deltas."""
    thinking_open = False
    text_seen = False
    async for chunk in provider.stream(request):
        if isinstance(chunk, ThinkingChunk) and not chunk.text:
            reply.signature = chunk.signature or reply.signature  # a late signature, no text
            continue
        if isinstance(chunk, ThinkingChunk):
            if not thinking_open:
                sink.emit(ThinkingStart())
                thinking_open = True
            reply.thinking += chunk.text
            reply.signature = chunk.signature or reply.signature
            sink.emit(ThinkingDelta(chunk.text))
            continue
        if thinking_open:
            sink.emit(ThinkingDone())
            thinking_open = False
        if isinstance(chunk, TextChunk):
            reply.text += chunk.text
            text_seen = True
            sink.emit(TextDelta(chunk.text))
        elif isinstance(chunk, ToolCallChunk):
            reply.tool_calls.append(chunk.call)
        elif isinstance(chunk, DoneChunk):
            reply.usage, reply.stop_reason = chunk.usage, chunk.stop_reason
    if thinking_open:
        sink.emit(ThinkingDone())
    if text_seen:
        sink.emit(TextDone())
    if not reply.finished:
        raise ProviderError("the model's reply ended without finishing; it was discarded")
