"""HTTP failures become one sentence of the right kind, whatever the vendor's body looks like."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from koda.providers.base import (
    AuthError,
    ContextOverflowError,
    OverloadedError,
    ProviderError,
    RateLimitError,
)
from koda.providers.http import error_detail, error_for_status, retry_after

if TYPE_CHECKING:
    from conftest import Harness


def body(message: str, **extra: object) -> str:
    return json.dumps({"error": {"message": message, **extra}})


OVERLOADED = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "x"}})
GEMINI_403 = json.dumps([{"error": {"code": 403, "message": "no", "status": "PERMISSION_DENIED"}}])


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (429, body("slow down"), RateLimitError),
        (529, OVERLOADED, OverloadedError),
        (503, "upstream unavailable", OverloadedError),
        (400, body("maximum context length is 128000", code="context_length_exceeded"),
         ContextOverflowError),
        (400, body("prompt is too long: 210000 tokens > 200000 maximum"), ContextOverflowError),
        (413, "request entity too large", ContextOverflowError),
        (401, body("invalid x-api-key"), AuthError),
        (403, GEMINI_403, AuthError),
        (404, body("model: claude-9 not found"), ProviderError),
        # An over-long tool id is a bad request, not a reason to compact the conversation.
        (400, body("Invalid 'messages[3].tool_call_id': string too long"), ProviderError),
    ],
)  # fmt: skip
def test_status_and_body_give_the_right_error(status: int, text: str, kind: type) -> None:
    error = error_for_status("openai", status, text, {})
    assert type(error) is kind
    assert error.message.startswith(("openai", "the conversation"))
    assert "\n" not in error.message


def test_retryable_errors_carry_retry_after() -> None:
    error = error_for_status("anthropic", 429, "{}", {"retry-after": "7"})
    assert error.retryable and error.retry_after == 7.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_error_detail_reads_every_vendor_shape() -> None:
    assert error_detail('{"error": {"message": "m1"}}') == "m1"
    assert error_detail('[{"error": {"message": "m2"}}]') == "m2"
    assert error_detail('{"error": "m3"}') == "m3"
    assert error_detail("plain text") == "plain text"


async def test_closing_a_session_closes_old_and_current_providers(harness: Harness) -> None:
    session = harness.session([{"text": "x"}])
    closed: list[str] = []
    old = session.provider

    async def record_old() -> None:
        closed.append("old")

    old.aclose = record_old  # type: ignore[method-assign]
    from koda.config import KodaConfig

    session.update_provider(KodaConfig(script='[{"text": "y"}]'))

    async def record_new() -> None:
        closed.append("new")

    session.provider.aclose = record_new  # type: ignore[method-assign]
    await session.close()
    assert closed == ["old", "new"]


def test_a_local_server_that_is_not_running_fails_at_once_with_a_hint() -> None:
    import httpx2

    from koda.providers.base import NetworkError
    from koda.providers.http import transport_error

    local = transport_error("ollama", "http://localhost:11434/v1/chat/completions",
                            httpx2.ConnectError("refused"))  # fmt: skip
    assert not local.retryable and "Is the server running?" in local.message
    remote = transport_error("openai", "https://api.openai.com/v1/chat/completions",
                             httpx2.ConnectError("refused"))  # fmt: skip
    assert isinstance(remote, NetworkError) and remote.retryable
