"""run_or_cancel and the cancel token, on their own."""

from __future__ import annotations

import asyncio
import time

import pytest

from koda.cancel import Cancelled, CancelToken, run_or_cancel, sleep_or_cancel


async def test_result_is_returned_when_not_cancelled() -> None:
    async def work() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert await run_or_cancel(work(), CancelToken()) == 7


async def test_exception_of_the_work_propagates() -> None:
    async def work() -> None:
        raise KeyError("inner")

    with pytest.raises(KeyError):
        await run_or_cancel(work(), CancelToken())


async def test_cancel_stops_the_work_at_once() -> None:
    token = CancelToken()
    stopped = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    asyncio.get_running_loop().call_later(0.05, token.cancel)
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        await run_or_cancel(work(), token)
    assert time.monotonic() - t0 < 0.5
    assert stopped.is_set()


async def test_already_cancelled_token_never_starts_the_work() -> None:
    token = CancelToken()
    token.cancel()
    started = False

    async def work() -> None:
        nonlocal started
        started = True

    with pytest.raises(Cancelled):
        await run_or_cancel(work(), token)
    await asyncio.sleep(0)
    assert not started


async def test_grace_lets_cooperative_work_stop_by_itself() -> None:
    token = CancelToken()
    cleaned = asyncio.Event()

    async def cooperative() -> str:
        await token.wait()
        await asyncio.sleep(0.05)  # cleanup that must not be cut short
        cleaned.set()
        return "stopped"

    asyncio.get_running_loop().call_later(0.02, token.cancel)
    with pytest.raises(Cancelled):
        await run_or_cancel(cooperative(), token, grace=1.0)
    assert cleaned.is_set()


async def test_grace_is_bounded_for_work_that_ignores_the_token() -> None:
    token = CancelToken()

    async def stubborn() -> None:
        await asyncio.sleep(10)

    asyncio.get_running_loop().call_later(0.02, token.cancel)
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        await run_or_cancel(stubborn(), token, grace=0.2)
    assert 0.15 < time.monotonic() - t0 < 1.0


async def test_outer_task_cancellation_cancels_the_work() -> None:
    token = CancelToken()
    stopped = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    task = asyncio.create_task(run_or_cancel(work(), token))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert stopped.is_set()


async def test_reset_arms_the_token_again() -> None:
    token = CancelToken()
    token.cancel()
    assert token.is_cancelled
    token.reset()
    assert not token.is_cancelled
    await sleep_or_cancel(0.01, token)
