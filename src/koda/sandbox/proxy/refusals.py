"""What the proxies refused, kept so the session can tell the user (and the model) why."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

Protocol = Literal["http", "socks"]


@dataclass(frozen=True)
class Refusal:
    host: str
    protocol: Protocol
    reason: str


class RefusalLog:
    """The newest `cap` refusals, oldest first; written by the proxy thread, read by others."""

    def __init__(self, cap: int) -> None:
        self._items: deque[Refusal] = deque(maxlen=cap)
        self._lock = threading.Lock()
        self._total = 0

    def add(self, refusal: Refusal) -> None:
        with self._lock:
            self._items.append(refusal)
            self._total += 1

    def snapshot(self) -> list[Refusal]:
        with self._lock:
            return list(self._items)

    def total(self) -> int:
        """How many refusals there were in all, kept ones or not."""
        with self._lock:
            return self._total

    def since(self, total: int) -> list[Refusal]:
        """The refusals after the first `total` (as many of them as are still kept)."""
        with self._lock:
            new = self._total - total
            return list(self._items)[-new:] if new > 0 else []
