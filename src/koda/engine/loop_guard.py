"""Two brakes on a runaway turn: an iteration cap and a detector for repeated identical calls."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from koda.providers.base import ToolCall

RepeatVerdict = Literal["ok", "warn", "stop"]


@dataclass(frozen=True)
class RepeatCheck:
    verdict: RepeatVerdict
    count: int


def fingerprint(call: ToolCall) -> str:
    return call.name + ":" + json.dumps(call.arguments, sort_keys=True, default=str)


class LoopGuard:
    """Counts iterations against a cap and consecutive identical tool calls.

    The `warn_at`-th identical call in a row runs with a warning for the model; one more
    identical call after that stops the turn.
    """

    def __init__(self, cap: int, warn_at: int = 3) -> None:
        self.cap = cap
        self.iterations = 0
        self._warn_at = warn_at
        self._last: str | None = None
        self._streak = 0
        self._recent: deque[str] = deque(maxlen=5)

    @property
    def at_cap(self) -> bool:
        return self.iterations >= self.cap

    def extend(self, extra: int) -> None:
        self.cap += extra

    @property
    def recent_tools(self) -> list[str]:
        return list(self._recent)

    def check(self, call: ToolCall) -> RepeatCheck:
        self._recent.append(call.name)
        key = fingerprint(call)
        self._streak = self._streak + 1 if key == self._last else 1
        self._last = key
        if self._streak > self._warn_at:
            return RepeatCheck("stop", self._streak)
        if self._streak == self._warn_at:
            return RepeatCheck("warn", self._streak)
        return RepeatCheck("ok", self._streak)


def repeat_warning(call: ToolCall, count: int) -> str:
    return (
        f"\n\n[Koda: this is identical {call.name} call number {count} in a row, with the same "
        "arguments. Repeating it will not give a different result. Step back, reconsider the "
        "approach, or answer with what you have. One more identical call ends the turn.]"
    )


def args_preview(args: Any, limit: int = 120) -> str:
    text = json.dumps(args, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
