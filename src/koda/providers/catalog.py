"""Choosing and building the provider a session talks to."""

from __future__ import annotations

import os
from collections.abc import Mapping

from koda.config import KodaConfig
from koda.providers.base import LlmProvider

# Providers whose adapters are planned, with the variable that holds each one's key.
KNOWN_KEYS: dict[str, str] = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "groq": "GROQ_API_KEY",
}

HOW_TO_CONFIGURE = """\
No model provider is configured, so Koda has nobody to ask.

Set the key of the provider you use, for example:
    export ANTHROPIC_API_KEY=...      (Anthropic)
    export OPENAI_API_KEY=...         (OpenAI)
    export GEMINI_API_KEY=...         (Google Gemini)
or choose one explicitly with --provider NAME (or KODA_PROVIDER).

To see Koda work without any model, run:  koda demo"""


class ProviderSetupError(Exception):
    """No usable provider; the message tells the user what to do."""


def resolve_name(config: KodaConfig, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if config.provider:
        return config.provider.strip().lower()
    if config.script:
        return "scripted"
    for name, key in KNOWN_KEYS.items():
        if env.get(key):
            return name
    raise ProviderSetupError(HOW_TO_CONFIGURE)


def create_provider(config: KodaConfig, env: Mapping[str, str] | None = None) -> LlmProvider:
    name = resolve_name(config, env)
    if name == "scripted":
        return _scripted(config)
    if name in KNOWN_KEYS:
        raise ProviderSetupError(
            f"The {name} adapter is not part of this Koda build yet. "
            "Use --provider scripted with KODA_SCRIPT, or run `koda demo`."
        )
    raise ProviderSetupError(
        f"Unknown provider '{name}'. Known: scripted, {', '.join(KNOWN_KEYS)}."
    )


def _scripted(config: KodaConfig) -> LlmProvider:
    from koda.providers.scripted import ScriptedProvider, ScriptError, load_script

    if not config.script:
        raise ProviderSetupError(
            "The scripted provider needs a script: set KODA_SCRIPT to a JSON file or JSON text "
            "(format: docs/scripted-provider.md)."
        )
    try:
        return ScriptedProvider(load_script(config.script), log_path=config.script_log)
    except ScriptError as exc:
        raise ProviderSetupError(
            f"The script for the scripted provider is invalid: {exc}"
        ) from None
