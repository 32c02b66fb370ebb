"""The provider contract: requests, stream chunks, errors and the LlmProvider protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    signature: str | None = None  # Gemini's thought signature, echoed back with the call


@dataclass(frozen=True)
class ImageData:
    media_type: str
    data: str  # base64


@dataclass(slots=True)
class Message:
    """One message of provider-neutral history."""

    role: Role
    content: str = ""
    thinking: str | None = None
    thinking_signature: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None
    images: list[ImageData] = field(default_factory=list)


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class ChatRequest:
    model: str
    system: str
    messages: list[Message]
    tools: list[ToolDefinition]
    max_tokens: int = 16384
    temperature: float | None = None
    thinking_budget: int | None = None
    reasoning_effort: str | None = None

    def to_json(self) -> dict[str, Any]:
        # Written out rather than dataclasses.asdict, whose deep copy costs ~13 µs a message.
        return {
            "model": self.model,
            "system": self.system,
            "messages": [message_to_json(m) for m in self.messages],
            "tools": [
                {"name": t.name, "description": t.description, "parameters": t.parameters}
                for t in self.tools
            ],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "thinking_budget": self.thinking_budget,
            "reasoning_effort": self.reasoning_effort,
        }


def message_to_json(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "thinking": m.thinking,
        "thinking_signature": m.thinking_signature,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments, "signature": c.signature}
            for c in m.tool_calls
        ],
        "tool_call_id": m.tool_call_id,
        "tool_name": m.tool_name,
        "images": [{"media_type": i.media_type, "data": i.data} for i in m.images],
    }


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one reply. `prompt` is the uncached input only (cache reads and writes are
    counted beside it); `completion` includes any `thinking` tokens."""

    prompt: int = 0
    completion: int = 0
    cache_read: int = 0
    cache_write: int = 0
    thinking: int = 0


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ThinkingChunk:
    text: str
    signature: str | None = None


@dataclass(frozen=True)
class ToolCallChunk:
    call: ToolCall


@dataclass(frozen=True)
class DoneChunk:
    usage: TokenUsage
    stop_reason: str = "end_turn"  # end_turn | tool_use | max_tokens


StreamChunk = TextChunk | ThinkingChunk | ToolCallChunk | DoneChunk


@dataclass(frozen=True)
class ModelCapabilities:
    context_window: int
    max_output_tokens: int


class ProviderError(Exception):
    """A failure talking to a model. `retryable` errors may succeed if sent again."""

    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class RateLimitError(ProviderError):
    retryable = True


class OverloadedError(ProviderError):
    retryable = True


class NetworkError(ProviderError):
    retryable = True


class ContextOverflowError(ProviderError):
    pass


class AuthError(ProviderError):
    pass


class LlmProvider(Protocol):
    name: str  # the host's name in the catalog: "anthropic", "openrouter", "ollama", …
    default_model: str

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]: ...

    async def list_models(self) -> list[str]: ...

    def capabilities(self, model: str) -> ModelCapabilities:
        """What the provider's API said about `model` (see probe), else the table, else a floor."""
        ...

    async def probe(self, model: str) -> None:
        """Ask the API about `model` where it can tell (context window); never raises."""
        ...

    def cost_usd(self, model: str, usage: TokenUsage) -> float | None:
        """What a reply cost in US dollars, or None when the price is unknown."""
        ...

    async def aclose(self) -> None: ...
