"""A cancel token shared by the engine, tools and providers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine
from typing import TypeVar

T = TypeVar("T")


class CancelToken:
    """A one-shot signal; `reset()` arms it again for the next turn."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    @property
    def is_cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()

    def reset(self) -> None:
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Cancelled(Exception):
    """Raised when a cancel token fires while waiting."""


async def run_or_cancel(awaitable: Awaitable[T], token: CancelToken, *, grace: float = 0) -> T:
    """Await `awaitable`, but give up (cancelling it) as soon as `token` fires.

    With `grace`, work that watches the token itself gets that many seconds to stop on its own
    (a shell stopping its process group) before it is cancelled outright.
    """
    if token.is_cancelled:
        if isinstance(awaitable, Coroutine):
            awaitable.close()
        raise Cancelled
    work = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(token.wait())
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done() and grace > 0:
            await asyncio.wait({work}, timeout=grace)
    except BaseException:
        work.cancel()
        stop.cancel()
        raise
    if work.done() and not stop.done():
        stop.cancel()
        return work.result()
    stop.cancel()
    work.cancel()
    with contextlib.suppress(BaseException):
        await work
    raise Cancelled


async def sleep_or_cancel(seconds: float, token: CancelToken) -> None:
    await run_or_cancel(asyncio.sleep(seconds), token)
