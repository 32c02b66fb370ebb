"""What Koda knows of models without asking: context windows and prices.

A provider's own API wins where it tells (see each adapter's `probe`); these tables come next;
a 4,096-token floor last, so an unknown model is never given room it may not have.
"""

from __future__ import annotations

from dataclasses import dataclass

from koda.providers.base import ModelCapabilities, TokenUsage

FLOOR = 4096
DEFAULT_OUTPUT = 16_384


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float = 0.0


# (model name prefix, context window, max output tokens); the longest matching prefix wins.
WINDOWS: list[tuple[str, int, int]] = [
    ("claude-opus-4", 200_000, 32_000), ("claude-opus-4-5", 200_000, 64_000),
    ("claude-sonnet-4", 200_000, 64_000), ("claude-haiku-4", 200_000, 64_000),
    ("claude-3-7-sonnet", 200_000, 64_000), ("claude-3-5", 200_000, 8_192),
    ("claude", 200_000, 8_192),
    ("gpt-5", 400_000, 128_000), ("gpt-4.1", 1_047_576, 32_768), ("gpt-4o", 128_000, 16_384),
    ("gpt-4-turbo", 128_000, 4_096), ("gpt-4", 8_192, 4_096), ("gpt-3.5", 16_385, 4_096),
    ("o1", 200_000, 100_000), ("o3", 200_000, 100_000), ("o4", 200_000, 100_000),
    ("gemini-1.5-pro", 2_097_152, 8_192), ("gemini-2", 1_048_576, 65_536),
    ("gemini", 1_048_576, 8_192),
    ("grok-4", 256_000, 64_000), ("grok", 131_072, 16_384),
    ("deepseek", 128_000, 8_192), ("mistral-large", 128_000, 16_384), ("mistral", 32_000, 8_192),
    ("llama-3.3", 128_000, 8_192), ("llama-3.1", 128_000, 8_192), ("llama", 8_192, 4_096),
    ("qwen3", 128_000, 16_384), ("qwen2.5", 128_000, 8_192), ("qwen", 32_000, 8_192),
    ("minimax", 1_000_000, 40_000),
]  # fmt: skip

PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(5, 25, 0.5, 6.25),
    "claude-opus-4": Price(15, 75, 1.5, 18.75),
    "claude-sonnet-4": Price(3, 15, 0.3, 3.75),
    "claude-3-7-sonnet": Price(3, 15, 0.3, 3.75),
    "claude-haiku-4": Price(1, 5, 0.1, 1.25),
    "claude-3-5-haiku": Price(0.8, 4, 0.08, 1.0),
    "gpt-5-nano": Price(0.05, 0.4, 0.005),
    "gpt-5-mini": Price(0.25, 2, 0.025),
    "gpt-5": Price(1.25, 10, 0.125),
    "gpt-4.1-nano": Price(0.1, 0.4, 0.025),
    "gpt-4.1-mini": Price(0.4, 1.6, 0.1),
    "gpt-4.1": Price(2, 8, 0.5),
    "gpt-4o-mini": Price(0.15, 0.6, 0.075),
    "gpt-4o": Price(2.5, 10, 1.25),
    "o3": Price(2, 8, 0.5),
    "o4-mini": Price(1.1, 4.4, 0.275),
    "gemini-2.5-pro": Price(1.25, 10, 0.31),
    "gemini-2.5-flash-lite": Price(0.1, 0.4, 0.025),
    "gemini-2.5-flash": Price(0.3, 2.5, 0.075),
    "deepseek-chat": Price(0.27, 1.1, 0.07),
    "deepseek-reasoner": Price(0.55, 2.19, 0.14),
    "grok-4": Price(3, 15, 0.75),
}


def _bare(model: str) -> str:
    # "anthropic/claude-sonnet-4.5" on a gateway prices and sizes like "claude-sonnet-4.5".
    return model.rsplit("/", 1)[-1].lower()


def _longest_prefix(model: str, prefixes: list[str]) -> str | None:
    name = _bare(model)
    matches = [p for p in prefixes if name.startswith(p)]
    return max(matches, key=len) if matches else None


def table_capabilities(model: str) -> ModelCapabilities:
    prefix = _longest_prefix(model, [w[0] for w in WINDOWS])
    if prefix is None:
        return ModelCapabilities(FLOOR, min(DEFAULT_OUTPUT, FLOOR // 2))
    window, output = next((w, o) for p, w, o in WINDOWS if p == prefix)
    return ModelCapabilities(window, output)


def price_of(model: str) -> Price | None:
    prefix = _longest_prefix(model, list(PRICES))
    return PRICES[prefix] if prefix else None


def cost_usd(model: str, usage: TokenUsage, *, local: bool = False) -> float | None:
    """What a reply cost; None when the price is not known (never a made-up zero)."""
    if local:
        return 0.0
    price = price_of(model)
    if price is None:
        return None
    # Providers count cached tokens inside the prompt figure or beside it; `prompt` here is the
    # uncached part (adapters normalise to that).
    total = (
        usage.prompt * price.input
        + usage.completion * price.output
        + usage.cache_read * price.cache_read
        + usage.cache_write * price.cache_write
    )
    return total / 1_000_000
