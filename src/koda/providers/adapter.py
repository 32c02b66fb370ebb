"""What every HTTP adapter shares: its catalog host, one client made on first use, and what the
vendor's API said about models (filled in by each adapter's `probe`)."""

from __future__ import annotations

import httpx2

from koda.providers import models
from koda.providers.base import ModelCapabilities, TokenUsage
from koda.providers.hosts import Host
from koda.providers.http import make_client


class HttpAdapter:
    def __init__(self, host: Host, *, api_key: str | None, base_url: str) -> None:
        self.host = host
        self.name = host.name
        self.default_model = host.default_model
        self.base_url = (base_url or host.base_url).rstrip("/")
        self.api_key = api_key
        self.learned: dict[str, ModelCapabilities] = {}
        self._client: httpx2.AsyncClient | None = None

    def http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = make_client(self.base_url)
        return self._client

    def capabilities(self, model: str) -> ModelCapabilities:
        return self.learned.get(model) or models.table_capabilities(model)

    def cost_usd(self, model: str, usage: TokenUsage) -> float | None:
        return models.cost_usd(model, usage, local=self.host.local)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
