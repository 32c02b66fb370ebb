"""Stored keys, the model tables (windows and prices) and how a provider is chosen."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from koda.config import KodaConfig
from koda.providers import keys
from koda.providers.base import TokenUsage
from koda.providers.catalog import (
    ProviderSetupError,
    api_key_for,
    base_url_for,
    resolve_host,
)
from koda.providers.hosts import HOSTS, find_host
from koda.providers.models import FLOOR, cost_usd, table_capabilities


def test_stored_key_file_is_private_from_the_start(private_koda_home: Path) -> None:
    path = keys.save_key("anthropic", "sk-ant-secret-123456")
    assert path.parent == private_koda_home
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.stored_key("anthropic") == "sk-ant-secret-123456"
    assert keys.stored_providers() == ["anthropic"]
    assert keys.delete_key("anthropic") is True
    assert keys.stored_key("anthropic") is None
    assert keys.delete_key("anthropic") is False


def test_a_corrupt_keys_file_is_no_keys_not_a_crash(private_koda_home: Path) -> None:
    (private_koda_home / "keys.json").write_text("{not json", encoding="utf-8")
    assert keys.stored_key("openai") is None
    keys.save_key("openai", "sk-new-key-0000000")
    assert keys.stored_key("openai") == "sk-new-key-0000000"


def test_keyring_without_the_package_says_how(private_koda_home: Path) -> None:
    try:
        import keyring  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(keys.KeyringUnavailable, match="pip install keyring"):
            keys.save_key_in_keyring("openai", "sk-x-123456789012")
        assert keys.stored_key("openai") is None
    else:
        pytest.fail("keyring is installed here; this test pins the message when it is not")


def test_mask_shows_only_the_ends() -> None:
    assert keys.mask("sk-ant-api03-abcdefghijklmnop") == "sk-a…mnop"
    assert keys.mask("short") == "*****"


def test_environment_key_wins_over_a_stored_one() -> None:
    keys.save_key("openai", "sk-stored-000000000")
    host = HOSTS["openai"]
    assert api_key_for(host, {"OPENAI_API_KEY": "sk-env"}) == "sk-env"
    assert api_key_for(host, {}) == "sk-stored-000000000"
    assert api_key_for(HOSTS["ollama"], {}) is None
    with pytest.raises(ProviderSetupError, match="koda auth login anthropic"):
        api_key_for(HOSTS["anthropic"], {})


def test_provider_choice_order() -> None:
    assert resolve_host(KodaConfig(provider="claude"), {}).name == "anthropic"
    assert resolve_host(KodaConfig(script="[]"), {"OPENAI_API_KEY": "k"}).name == "scripted"
    assert resolve_host(KodaConfig(), {"GEMINI_API_KEY": "k"}).name == "gemini"
    keys.save_key("groq", "gsk-stored-0000000")
    assert resolve_host(KodaConfig(), {}).name == "groq"
    with pytest.raises(ProviderSetupError, match="Unknown provider 'nobody'"):
        resolve_host(KodaConfig(provider="nobody"), {})


def test_base_urls_follow_each_vendors_convention() -> None:
    env = {
        "OPENAI_BASE_URL": "http://gateway.internal:8080/v1/",
        "ANTHROPIC_BASE_URL": "http://proxy.internal",
        "GOOGLE_GEMINI_BASE_URL": "http://g.internal",
    }
    assert base_url_for(HOSTS["openai"], KodaConfig(), env) == "http://gateway.internal:8080/v1"
    assert base_url_for(HOSTS["anthropic"], KodaConfig(), env) == "http://proxy.internal"
    assert base_url_for(HOSTS["gemini"], KodaConfig(), env) == "http://g.internal"
    # --base-url / KODA_BASE_URL beats the vendor's variable; other hosts keep their own URL.
    flag = KodaConfig(base_url="http://127.0.0.1:9/v1")
    assert base_url_for(HOSTS["openai"], flag, env) == "http://127.0.0.1:9/v1"
    assert base_url_for(HOSTS["groq"], KodaConfig(), env) == HOSTS["groq"].base_url


def test_every_catalog_host_is_complete() -> None:
    names = {
        "anthropic", "openai", "gemini", "openrouter", "groq", "xai", "deepseek", "mistral",
        "together", "fireworks", "minimax", "lmstudio", "ollama", "vllm",
    }  # fmt: skip
    assert names <= set(HOSTS)
    for host in HOSTS.values():
        if host.wire == "openai" and host.name != "scripted":
            assert host.base_url.endswith("/v1"), host.name
        assert find_host(host.name) is host


def test_context_windows_come_from_the_table_or_the_floor() -> None:
    assert table_capabilities("claude-sonnet-4-5-20250929").context_window == 200_000
    assert table_capabilities("anthropic/claude-sonnet-4.5").context_window == 200_000
    assert table_capabilities("gpt-4.1-mini").context_window == 1_047_576
    assert table_capabilities("gemini-2.5-pro").context_window == 1_048_576
    unknown = table_capabilities("my-own-finetune")
    assert unknown.context_window == FLOOR
    assert unknown.max_output_tokens <= FLOOR


def test_cost_is_priced_or_unknown_never_a_made_up_zero() -> None:
    usage = TokenUsage(prompt=1_000_000, completion=100_000, cache_read=500_000, cache_write=0)
    assert cost_usd("claude-sonnet-4-5", usage) == pytest.approx(3 + 1.5 + 0.15)
    assert cost_usd("gpt-4.1-mini", usage) == pytest.approx(0.4 + 0.16 + 0.05)
    assert cost_usd("some-unknown-model", usage) is None
    assert cost_usd("llama3.2:3b", usage, local=True) == 0.0
