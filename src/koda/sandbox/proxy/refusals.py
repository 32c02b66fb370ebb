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

    def add(self, refusal: Refusal) -> None:
        with self._lock:
            self._items.append(refusal)

    def snapshot(self) -> list[Refusal]:
        with self._lock:
            return list(self._items)
