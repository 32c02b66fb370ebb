"""Choosing and building the provider a session talks to."""

from __future__ import annotations

import os
from collections.abc import Mapping

from koda.config import KodaConfig
from koda.providers.base import LlmProvider
from koda.providers.hosts import HOSTS, Host, find_host

HOW_TO_CONFIGURE = """\
No model provider is configured, so Koda has nobody to ask.

Set the key of the provider you use, for example:
    export ANTHROPIC_API_KEY=...      (Anthropic)
    export OPENAI_API_KEY=...         (OpenAI)
    export GEMINI_API_KEY=...         (Google Gemini)
or store one with `koda auth login PROVIDER`, or run a local server and pass
--provider ollama (or lmstudio, vllm). Choose explicitly with --provider NAME (or KODA_PROVIDER).

To see Koda work without any model, run:  koda demo"""


class ProviderSetupError(Exception):
    """No usable provider; the message tells the user what to do."""


def resolve_host(config: KodaConfig, env: Mapping[str, str] | None = None) -> Host:
    """The host asked for, else the scripted one if a script is set, else the first with a key."""
    env = os.environ if env is None else env
    if config.provider:
        host = find_host(config.provider)
        if host is None:
            names = ", ".join(sorted(HOSTS))
            raise ProviderSetupError(f"Unknown provider '{config.provider}'. Known: {names}.")
        return host
    if config.script:
        return HOSTS["scripted"]
    from koda.providers.keys import stored_key

    for host in HOSTS.values():
        if host.key_env and (env.get(host.key_env) or stored_key(host.name)):
            return host
    raise ProviderSetupError(HOW_TO_CONFIGURE)


def base_url_for(host: Host, config: KodaConfig, env: Mapping[str, str]) -> str:
    """--base-url / KODA_BASE_URL, else the vendor's own variable, else the catalog's URL."""
    url = config.base_url or (env.get(host.base_url_env) if host.base_url_env else None)
    return (url or host.base_url).rstrip("/")


def api_key_for(host: Host, env: Mapping[str, str]) -> str | None:
    if host.key_env is None:
        return None
    from koda.providers.keys import stored_key

    key = env.get(host.key_env) or stored_key(host.name)
    if not key:
        raise ProviderSetupError(
            f"No API key for {host.name}: set {host.key_env}, or run `koda auth login {host.name}`."
        )
    return key


def create_provider(config: KodaConfig, env: Mapping[str, str] | None = None) -> LlmProvider:
    env = os.environ if env is None else env
    host = resolve_host(config, env)
    if host.wire == "scripted":
        return _scripted(config)
    key = api_key_for(host, env)
    url = base_url_for(host, config, env)
    if host.wire == "anthropic":
        from koda.providers.anthropic import AnthropicProvider

        return AnthropicProvider(host, api_key=key, base_url=url)
    if host.wire == "gemini":
        from koda.providers.gemini import GeminiProvider

        return GeminiProvider(host, api_key=key, base_url=url)
    from koda.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(host, api_key=key, base_url=url)


def _scripted(config: KodaConfig) -> LlmProvider:
    from koda.providers.scripted import ScriptedProvider, ScriptError

    if not config.script:
        raise ProviderSetupError(
            "The scripted provider needs a script: set KODA_SCRIPT to a JSON file or JSON text "
            "(format: docs/scripted-provider.md)."
        )
    try:
        return ScriptedProvider.from_script(config.script, log_path=config.script_log)
    except ScriptError as exc:
        raise ProviderSetupError(f"The scripted provider's script is invalid: {exc}") from None


async def choose_model(provider: LlmProvider, config: KodaConfig) -> str:
    """The model asked for, else the provider's default, else the first a local server offers."""
    if config.model or provider.default_model:
        return config.model or provider.default_model
    try:
        models = await provider.list_models()
    except Exception as exc:  # a ProviderError, or anything odd a local server sends
        raise ProviderSetupError(
            f"Could not ask {provider.name} which models it has ({exc}). "
            "Is the server running? Name one with --model."
        ) from None
    if not models:
        raise ProviderSetupError(
            f"{provider.name} offers no models; load one in the server, or name it with --model."
        )
    return models[0]
