"""The mode a session starts in, what a sub-agent may get, and what it may do with no human."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from koda.engine.events import Warn
from koda.engine.trust import (
    ModeRefused,
    TrustMode,
    child_mode,
    start_mode,
    sub_agent_verdict,
)
from koda.sandbox.status import SandboxStatus
from koda.tools.base import Effect

if TYPE_CHECKING:
    from conftest import Harness

SANDBOX = SandboxStatus(True, "bwrap", "bubblewrap 0.9.0")
NO_SANDBOX = SandboxStatus(
    False, "none", "bubblewrap (bwrap) is not installed", "install bubblewrap: apt install it"
)
PLAN, SAFE, AUTO = TrustMode.PLAN, TrustMode.SAFE, TrustMode.AUTO


def test_a_new_session_starts_in_auto_where_the_sandbox_works() -> None:
    assert start_mode(None, None, SANDBOX) == (AUTO, None)


def test_without_a_sandbox_a_new_session_starts_safe_and_says_why() -> None:
    mode, notice = start_mode(None, None, NO_SANDBOX)
    assert mode is SAFE
    assert notice is not None
    assert "bubblewrap (bwrap) is not installed" in notice and "install bubblewrap" in notice


@pytest.mark.parametrize("mode", [PLAN, SAFE, AUTO])
def test_an_explicit_mode_is_used_as_asked(mode: TrustMode) -> None:
    assert start_mode(mode, "plan", SANDBOX) == (mode, None)


def test_an_explicit_auto_without_a_sandbox_is_refused_with_the_fix() -> None:
    with pytest.raises(ModeRefused) as info:
        start_mode(AUTO, None, NO_SANDBOX)
    message = str(info.value)
    assert "Auto mode needs the sandbox" in message and "install bubblewrap" in message
    assert "\n" not in message


@pytest.mark.parametrize("mode", [PLAN, SAFE])
def test_modes_below_auto_need_no_sandbox(mode: TrustMode) -> None:
    assert start_mode(mode, None, NO_SANDBOX) == (mode, None)


def test_a_resumed_session_keeps_its_stored_mode() -> None:
    assert start_mode(None, "plan", NO_SANDBOX) == (PLAN, None)
    assert start_mode(None, "auto", SANDBOX) == (AUTO, None)


def test_a_resumed_auto_session_without_a_sandbox_starts_safe() -> None:
    mode, notice = start_mode(None, "auto", NO_SANDBOX)
    assert mode is SAFE
    assert notice is not None and "was in Auto mode" in notice


def test_an_unknown_stored_mode_never_grants_more_trust() -> None:
    assert start_mode(None, "turbo", SANDBOX) == (SAFE, None)


@pytest.mark.parametrize(
    ("parent", "declared", "expected"),
    [
        (AUTO, AUTO, AUTO),
        (AUTO, SAFE, SAFE),
        (AUTO, PLAN, PLAN),
        (SAFE, AUTO, SAFE),
        (SAFE, PLAN, PLAN),
        (PLAN, AUTO, PLAN),
        (PLAN, SAFE, PLAN),
    ],
)
def test_a_child_gets_the_lesser_of_parent_and_declared(
    parent: TrustMode, declared: TrustMode, expected: TrustMode
) -> None:
    assert child_mode(parent, declared) is expected


async def test_a_child_follows_the_parents_live_mode(harness: Harness) -> None:
    session = harness.session([{"text": "ok"}], mode="auto")
    assert child_mode(session.mode, AUTO) is AUTO
    session.set_mode(SAFE)  # switched mid-session: a child started now must not get Auto
    assert child_mode(session.mode, AUTO) is SAFE


@pytest.mark.parametrize(
    ("mode", "effect", "expected"),
    [
        (PLAN, Effect.READ_ONLY, "run"),
        (PLAN, Effect.LOCAL_MUTATION, "block"),
        (SAFE, Effect.READ_ONLY, "run"),
        (SAFE, Effect.LOCAL_MUTATION, "block"),  # would ask: nobody is there
        (SAFE, Effect.REMOTE_ACTION, "block"),
        (SAFE, Effect.DESTRUCTIVE, "block"),
        (AUTO, Effect.READ_ONLY, "run"),
        (AUTO, Effect.LOCAL_MUTATION, "run"),
        (AUTO, Effect.REMOTE_ACTION, "run"),
        (AUTO, Effect.DESTRUCTIVE, "block"),
    ],
)
def test_a_sub_agent_never_asks(mode: TrustMode, effect: Effect, expected: str) -> None:
    assert sub_agent_verdict(mode, effect) == expected


async def test_a_start_notice_is_said_once_at_the_next_turn(harness: Harness) -> None:
    session = harness.session([{"text": "one"}, {"text": "two"}], mode="safe")
    _, notice = start_mode(None, "auto", NO_SANDBOX)
    assert notice is not None
    session.notices.append(notice)
    sink = await harness.turn(session, "hi")
    assert [w.message for w in sink.of_type(Warn)] == [notice]
    sink = await harness.turn(session, "again")
    assert not sink.of_type(Warn)


async def test_switching_to_auto_without_a_sandbox_is_refused_and_keeps_the_mode(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import koda.engine.session as session_module

    session = harness.session([{"text": "ok"}], mode="safe")
    gone = SandboxStatus(False, "none", "bubblewrap (bwrap) is not installed", "install it")
    monkeypatch.setattr(session_module, "sandbox_status", lambda: gone)
    with pytest.raises(ModeRefused, match=r"Auto mode needs the sandbox.*install it"):
        session.set_mode(TrustMode.AUTO)
    assert session.mode == TrustMode.SAFE
    assert harness.store.sessions.get(session.id).mode == "safe"
    session.set_mode(TrustMode.PLAN)  # lower modes need no sandbox
    assert session.mode == TrustMode.PLAN
