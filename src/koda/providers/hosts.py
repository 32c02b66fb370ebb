"""Every provider Koda knows, as data: which wire format it speaks, where, with which key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Wire = Literal["anthropic", "openai", "gemini", "scripted"]


@dataclass(frozen=True)
class Host:
    name: str
    wire: Wire
    base_url: str  # each vendor's own convention: OpenAI-style URLs end in /v1
    key_env: str | None  # None: a local server that needs no key
    default_model: str
    base_url_env: str | None = None  # the vendor's usual variable for a gateway or proxy

    @property
    def local(self) -> bool:
        return self.key_env is None


HOSTS: dict[str, Host] = {
    h.name: h
    for h in (
        Host("anthropic", "anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY",
             "claude-sonnet-4-6", "ANTHROPIC_BASE_URL"),
        Host("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4.1",
             "OPENAI_BASE_URL"),
        Host("gemini", "gemini", "https://generativelanguage.googleapis.com", "GEMINI_API_KEY",
             "gemini-2.5-flash", "GOOGLE_GEMINI_BASE_URL"),
        Host("openrouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
             "anthropic/claude-sonnet-4.5"),
        Host("groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY",
             "llama-3.3-70b-versatile"),
        Host("xai", "openai", "https://api.x.ai/v1", "XAI_API_KEY", "grok-4"),
        Host("deepseek", "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY",
             "deepseek-chat"),
        Host("mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY",
             "mistral-large-latest"),
        Host("together", "openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY",
             "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        Host("fireworks", "openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY",
             "accounts/fireworks/models/llama-v3p3-70b-instruct"),
        Host("minimax", "openai", "https://api.minimax.io/v1", "MINIMAX_API_KEY", "MiniMax-M1"),
        Host("lmstudio", "openai", "http://localhost:1234/v1", None, ""),
        Host("ollama", "openai", "http://localhost:11434/v1", None, ""),
        Host("vllm", "openai", "http://localhost:8000/v1", None, ""),
        Host("scripted", "scripted", "", None, "scripted"),
    )
}  # fmt: skip

ALIASES = {
    "claude": "anthropic", "google": "gemini", "grok": "xai", "lm-studio": "lmstudio",
    "lm_studio": "lmstudio", "mock": "scripted",
}  # fmt: skip


def find_host(name: str) -> Host | None:
    key = name.strip().lower()
    return HOSTS.get(ALIASES.get(key, key))
