"""Trust modes and the matrix that says what runs, what asks and what is blocked."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from koda.sandbox.status import SandboxStatus
from koda.tools.base import Effect

Verdict = Literal["run", "ask", "block"]


class TrustMode(StrEnum):
    PLAN = "plan"
    SAFE = "safe"
    AUTO = "auto"


class ModeRefused(Exception):
    """A mode that cannot be used here; the message says how to make it possible."""


_ALIASES = {
    "plan": TrustMode.PLAN, "readonly": TrustMode.PLAN, "read-only": TrustMode.PLAN,
    "safe": TrustMode.SAFE, "confirm": TrustMode.SAFE, "strict": TrustMode.SAFE,
    "auto": TrustMode.AUTO, "yolo": TrustMode.AUTO,
}  # fmt: skip

_RANK = {TrustMode.PLAN: 0, TrustMode.SAFE: 1, TrustMode.AUTO: 2}

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


def sub_agent_verdict(mode: TrustMode, effect: Effect) -> Verdict:
    """A sub-agent has nobody to ask: what would ask a human is refused instead."""
    rule = verdict(mode, effect)
    return "block" if rule == "ask" or effect == Effect.DESTRUCTIVE else rule


def child_mode(parent_live: TrustMode, declared: TrustMode) -> TrustMode:
    """A sub-agent never gets more trust than its parent has right now (not at its start)."""
    return min(parent_live, declared, key=_RANK.__getitem__)


def auto_refusal(status: SandboxStatus) -> str:
    return f"Auto mode needs the sandbox, and {status.detail}. To use Auto, {status.fix}."


def start_mode(
    explicit: TrustMode | None, stored: str | None, status: SandboxStatus
) -> tuple[TrustMode, str | None]:
    """The mode a session starts in, and a notice when it is not the one asked for.

    `explicit` is what the user asked for now (--mode or KODA_MODE): Auto without a sandbox is
    refused (ModeRefused). A resumed session's `stored` mode is re-checked, not trusted: stored
    Auto falls back to Safe where the sandbox is gone. Without either, Auto where the sandbox
    works, else Safe.
    """
    if explicit is not None:
        if explicit == TrustMode.AUTO and not status.available:
            raise ModeRefused(auto_refusal(status))
        return explicit, None
    mode = _stored(stored) if stored is not None else TrustMode.AUTO
    if mode == TrustMode.AUTO and not status.available:
        why = "was in Auto mode" if stored is not None else "would start in Auto mode"
        return TrustMode.SAFE, (
            f"Safe mode: this session {why}, but {status.detail}; "
            f"changes will ask first. For Auto, {status.fix}."
        )
    return mode, None


def _stored(text: str) -> TrustMode:
    try:
        return parse_mode(text)
    except ValueError:
        return TrustMode.SAFE  # an unknown stored value never grants more trust
