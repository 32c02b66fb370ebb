"""The HTTP side every adapter shares: one client, timeouts, and failures turned into sentences.

Imported only when a real provider is used: httpx2 costs about 85 ms to import.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx2

from koda.providers.base import (
    AuthError,
    ContextOverflowError,
    NetworkError,
    OverloadedError,
    ProviderError,
    RateLimitError,
)

CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 300.0  # reasoning models may think for minutes before the first byte

# Phrases providers use when the request is larger than the model's context window.
# Specific phrases only: "string too long" (an over-long tool id) is not an overflow.
OVERFLOW_PHRASES = (
    "context_length_exceeded", "context length", "context window", "maximum context",
    "too many tokens", "prompt is too long", "input is too long", "exceeds the model",
    "request too large", "input token count", "maximum number of tokens",
)  # fmt: skip


def make_client(base_url: str = "") -> httpx2.AsyncClient:
    connect = _env_seconds("KODA_CONNECT_TIMEOUT_SECS", CONNECT_TIMEOUT)
    read = _env_seconds("KODA_READ_TIMEOUT_SECS", READ_TIMEOUT)
    # A plain-http server (a local model) needs no TLS; building the context costs ~50 ms.
    plain = base_url.startswith("http://")
    # trust_env: a user's HTTPS_PROXY / NO_PROXY and CA settings keep working.
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(read, connect=connect),
        trust_env=True,
        follow_redirects=False,
        verify=not plain,
    )


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


@asynccontextmanager
async def open_stream(
    client: httpx2.AsyncClient,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str],
    body: dict[str, Any],
) -> AsyncIterator[httpx2.Response]:
    """POST `body` and yield the streaming response; HTTP and network failures are raised as
    ProviderErrors that say what happened and what to do."""
    try:
        async with client.stream("POST", url, headers=dict(headers), json=body) as response:
            if response.status_code >= 400:
                text = (await response.aread()).decode("utf-8", errors="replace")
                raise error_for_status(provider, response.status_code, text, response.headers)
            yield response
    except httpx2.TimeoutException as exc:
        raise NetworkError(f"{provider}: the request timed out ({type(exc).__name__})") from None
    except httpx2.TransportError as exc:
        raise transport_error(provider, url, exc) from None


async def get_json(
    client: httpx2.AsyncClient, url: str, *, provider: str, headers: Mapping[str, str]
) -> Any:
    try:
        response = await client.get(url, headers=dict(headers))
    except httpx2.TransportError as exc:
        raise transport_error(provider, url, exc) from None
    if response.status_code >= 400:
        raise error_for_status(provider, response.status_code, response.text, response.headers)
    try:
        return response.json()
    except ValueError:
        raise ProviderError(f"{provider}: the server's answer was not JSON") from None


def transport_error(provider: str, url: str, exc: Exception) -> ProviderError:
    """A refused connection to a server on this machine will not heal by waiting: say so at once.
    Anything else on the network may be passing, and is retried."""
    detail = str(exc) or type(exc).__name__
    host = urlsplit(url).hostname or ""
    if isinstance(exc, httpx2.ConnectError) and host in ("localhost", "127.0.0.1", "::1"):
        root = url.split("/v1")[0] if "/v1" in url else url
        return ProviderError(
            f"{provider}: nothing answers at {root} ({detail}). Is the server running? "
            "Start it, or point --base-url at it."
        )
    return NetworkError(f"{provider}: network error: {detail}")


def error_for_status(
    provider: str, status: int, body: str, headers: Mapping[str, str]
) -> ProviderError:
    detail = error_detail(body)
    said = f" ({detail})" if detail else ""
    lowered = detail.lower()
    if status == 429:
        return RateLimitError(
            f"{provider} is rate limiting requests{said}", retry_after=retry_after(headers)
        )
    if status in (500, 502, 503, 504, 529) or "overloaded" in lowered:
        return OverloadedError(
            f"{provider} is overloaded or failing (HTTP {status}){said}",
            retry_after=retry_after(headers),
        )
    if status == 413 or any(p in lowered for p in OVERFLOW_PHRASES):
        return ContextOverflowError(f"the conversation is too long for the model{said}")
    if status == 401:
        return AuthError(
            f"{provider} rejected the API key (HTTP 401){said}. "
            f"Check the key, or run `koda auth login {provider}`."
        )
    if status == 403:
        return AuthError(
            f"{provider} refused access (HTTP 403){said}. The key may lack access to this model."
        )
    if status == 404:
        return ProviderError(
            f"{provider} has no such model or endpoint (HTTP 404){said}. "
            "Check --model and --base-url."
        )
    return ProviderError(f"{provider} rejected the request (HTTP {status}){said}")


def error_detail(body: str) -> str:
    """The human part of an error body, whatever shape the provider uses."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = err.get("message") or err.get("type") or ""
            return str(message)[:300]
        if isinstance(err, str):
            return err[:300]
    return body.strip()[:300]


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
