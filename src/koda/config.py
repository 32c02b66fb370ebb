"""Settings for a session, resolved from flags over environment over defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_MAX_ITERATIONS = 200


@dataclass(frozen=True)
class KodaConfig:
    provider: str | None = None
    model: str | None = None
    base_url: str | None = None
    max_tokens: int = 16384
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    temperature: float | None = None
    thinking_budget: int | None = None
    reasoning_effort: str | None = None
    retry_attempts: int = 5
    retry_base_delay: float = 1.0
    script: str | None = None  # the scripted provider's JSON (a path or inline)
    script_log: str | None = None  # where the scripted provider records requests

    def with_overrides(self, **changes: Any) -> KodaConfig:
        """A copy with every non-None change applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def from_environment(env: Mapping[str, str] | None = None) -> KodaConfig:
    env = os.environ if env is None else env
    return KodaConfig(
        provider=env.get("KODA_PROVIDER") or None,
        model=env.get("KODA_MODEL") or None,
        base_url=env.get("KODA_BASE_URL") or None,
        script=env.get("KODA_SCRIPT") or None,
        script_log=env.get("KODA_SCRIPT_LOG") or None,
    )
