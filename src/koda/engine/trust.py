"""Trust modes and the matrix that says what runs, what asks and what is blocked."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from koda.tools.base import Effect

Verdict = Literal["run", "ask", "block"]


class TrustMode(StrEnum):
    PLAN = "plan"
    SAFE = "safe"
    AUTO = "auto"


_ALIASES = {
    "plan": TrustMode.PLAN, "readonly": TrustMode.PLAN, "read-only": TrustMode.PLAN,
    "safe": TrustMode.SAFE, "confirm": TrustMode.SAFE, "strict": TrustMode.SAFE,
    "auto": TrustMode.AUTO, "yolo": TrustMode.AUTO,
}  # fmt: skip

_MATRIX: dict[Effect, dict[TrustMode, Verdict]] = {
    Effect.READ_ONLY: {TrustMode.PLAN: "run", TrustMode.SAFE: "run", TrustMode.AUTO: "run"},
    Effect.REMOTE_ACTION: {TrustMode.PLAN: "block", TrustMode.SAFE: "ask", TrustMode.AUTO: "run"},
    Effect.LOCAL_MUTATION: {TrustMode.PLAN: "block", TrustMode.SAFE: "ask", TrustMode.AUTO: "run"},
    Effect.DESTRUCTIVE: {TrustMode.PLAN: "block", TrustMode.SAFE: "ask", TrustMode.AUTO: "ask"},
}


def parse_mode(text: str) -> TrustMode:
    mode = _ALIASES.get(text.strip().lower())
    if mode is None:
        raise ValueError(f"unknown mode '{text}': use plan, safe or auto")
    return mode


def verdict(mode: TrustMode, effect: Effect) -> Verdict:
    return _MATRIX[effect][mode]
