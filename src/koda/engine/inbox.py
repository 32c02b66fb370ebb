"""Routes a turn's incoming commands: interrupts, approvals, loop decisions and queued text."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from koda.cancel import CancelToken, run_or_cancel
from koda.engine.commands import (
    ApprovalDecision,
    ApprovalResponse,
    AskUserResponse,
    EngineCommand,
    Interrupt,
    LoopAction,
    LoopDecision,
    QueueNext,
)

# With no command queue there is nobody to ask: what would need a yes is refused.
NO_CHANNEL = ApprovalDecision(
    "reject_auto",
    reason="this session has no way to ask the user, so actions needing approval are refused",
)


class Inbox:
    """Reads the command queue for the length of a turn.

    Responses are matched to the request that is waiting for them; a response nobody waits for
    is dropped, so a late click can never approve a different action.
    """

    def __init__(self, commands: asyncio.Queue[EngineCommand] | None, cancel: CancelToken) -> None:
        self._commands = commands
        self._cancel = cancel
        self._waiting: dict[str, asyncio.Future[ApprovalDecision | str]] = {}
        self._loop_waiter: asyncio.Future[LoopAction] | None = None
        self._queued: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Inbox:
        if self._commands is not None:
            self._task = asyncio.create_task(self._pump(self._commands))
        return self

    def _pending(self) -> list[EngineCommand]:
        pending: list[EngineCommand] = []
        while self._commands is not None and not self._commands.empty():
            pending.append(self._commands.get_nowait())
        return pending

    def sync(self) -> None:
        """Act now on commands already sent, without waiting for the pump to run."""
        for cmd in self._pending():
            self.handle(cmd)

    def absorb_queued_text(self) -> None:
        """Between turns: keep text queued for the model and drop every other command.

        An interrupt or answer sent after a turn ended belongs to that turn; acting on it in
        the next one would cancel or approve something the user never saw.
        """
        for cmd in self._pending():
            if isinstance(cmd, QueueNext):
                self.handle(cmd)

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _pump(self, commands: asyncio.Queue[EngineCommand]) -> None:
        while True:
            self.handle(await commands.get())

    def handle(self, cmd: EngineCommand) -> None:
        if isinstance(cmd, Interrupt):
            self._cancel.cancel()
        elif isinstance(cmd, ApprovalResponse):
            self._resolve(cmd.id, cmd.decision)
        elif isinstance(cmd, AskUserResponse):
            self._resolve(cmd.id, cmd.answer)
        elif isinstance(cmd, LoopDecision):
            if self._loop_waiter is not None and not self._loop_waiter.done():
                self._loop_waiter.set_result(cmd.action)
        elif isinstance(cmd, QueueNext) and cmd.text.strip():
            self._queued.append(cmd.text)

    def _resolve(self, request_id: str, value: ApprovalDecision | str) -> None:
        waiter = self._waiting.pop(request_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    async def approval(self, request_id: str) -> ApprovalDecision:
        """Wait for the answer to approval `request_id`; raises Cancelled on interrupt."""
        if self._commands is None:
            return NO_CHANNEL
        result = await self._wait_for(request_id)
        assert isinstance(result, ApprovalDecision)
        return result

    async def answer(self, request_id: str) -> str:
        if self._commands is None:
            return ""
        result = await self._wait_for(request_id)
        return result if isinstance(result, str) else ""

    async def _wait_for(self, request_id: str) -> ApprovalDecision | str:
        waiter: asyncio.Future[ApprovalDecision | str] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        try:
            return await run_or_cancel(waiter, self._cancel)
        finally:
            self._waiting.pop(request_id, None)

    async def loop_decision(self) -> LoopAction:
        if self._commands is None:
            return "stop"
        self._loop_waiter = asyncio.get_running_loop().create_future()
        try:
            return await run_or_cancel(self._loop_waiter, self._cancel)
        finally:
            self._loop_waiter = None

    @property
    def has_queued(self) -> bool:
        return bool(self._queued)

    def take_queued(self) -> str | None:
        """Text queued with queue_next since the last call, joined, or None."""
        if not self._queued:
            return None
        text = "\n\n".join(self._queued)
        self._queued.clear()
        return text
