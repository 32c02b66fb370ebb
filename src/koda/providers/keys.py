"""API keys Koda stores for the user: a 0600 JSON file in the config dir, never the database.

The provider's usual environment variable always wins over a stored key.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from koda.paths import config_dir


def keys_path() -> Path:
    return config_dir() / "keys.json"


def _load() -> dict[str, str]:
    try:
        data = json.loads(keys_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


KEYRING = "@keyring"  # the value stored in keys.json when the key itself is in the OS keyring
KEYRING_SERVICE = "koda"


class KeyringUnavailable(Exception):
    """The OS keyring was asked for but cannot be used; the message says why."""


def stored_key(provider: str) -> str | None:
    value = _load().get(provider)
    if value != KEYRING:
        return value
    try:
        found = _keyring().get_password(KEYRING_SERVICE, provider)
    except Exception:  # a locked or missing backend must not stop Koda; the key is just absent
        return None
    return found if isinstance(found, str) else None


def save_key_in_keyring(provider: str, key: str) -> None:
    try:
        _keyring().set_password(KEYRING_SERVICE, provider, key)
    except KeyringUnavailable:
        raise
    except Exception as exc:
        raise KeyringUnavailable(f"the OS keyring refused the key: {exc}") from None
    save_key(provider, KEYRING)


def _keyring() -> Any:
    try:
        import keyring  # type: ignore[import-not-found]  # optional: only with --keyring
    except ImportError:
        raise KeyringUnavailable(
            "the keyring package is not installed (pip install keyring); "
            "without --keyring the key goes to a file only you can read"
        ) from None
    return keyring


def stored_providers() -> list[str]:
    return sorted(_load())


def save_key(provider: str, key: str) -> Path:
    keys = _load()
    keys[provider] = key
    _write(keys)
    return keys_path()


def delete_key(provider: str) -> bool:
    keys = _load()
    value = keys.pop(provider, None)
    if value is None:
        return False
    if value == KEYRING:
        # Already gone, or no backend: the file entry goes all the same.
        with contextlib.suppress(Exception):
            _keyring().delete_password(KEYRING_SERVICE, provider)
    _write(keys)
    return True


def _write(keys: dict[str, str]) -> None:
    path = keys_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start: the key is never readable by others, not even for a moment.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(keys, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def mask(key: str) -> str:
    """Enough to recognise a key, not enough to use it."""
    if len(key) <= 12:
        return "*" * len(key)
    return f"{key[:4]}…{key[-4:]}"
