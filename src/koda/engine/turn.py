"""One turn: ask the model, run the tools it calls, repeat until it answers in plain text."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from koda.cancel import Cancelled, run_or_cancel, sleep_or_cancel
from koda.config import KodaConfig
from koda.engine.commands import LOOP_EXTENSIONS
from koda.engine.compaction import CompactionError, compact
from koda.engine.dispatch import ToolDispatch
from koda.engine.events import (
    ContextUsage,
    Info,
    LoopCapReached,
    ReplyDiscarded,
    Usage,
    Warn,
)
from koda.engine.history import build_history, tool_call_to_json
from koda.engine.inbox import Inbox
from koda.engine.loop_guard import LoopGuard
from koda.engine.reply import Reply, stream_reply
from koda.engine.signatures import for_wire, tag, tag_calls
from koda.engine.sink import EngineSink
from koda.engine.stopped import TurnStopped
from koda.providers.base import (
    ChatRequest,
    ContextOverflowError,
    Message,
    ProviderError,
)
from koda.store import MessageRow

if TYPE_CHECKING:
    from koda.engine.session import KodaSession


MAX_RETRY_DELAY = 32.0
MAX_CONTINUATIONS = 2
COMPACT_AT = 0.85  # of the context window, before a request is sent
CONTINUE_NOTE = (
    "[Koda: your last reply was cut off by the output token limit. Continue exactly where it "
    "stopped, without repeating what you already wrote.]"
)


def last_context_size(rows: list[MessageRow]) -> int:
    for row in reversed(rows):
        if row.role == "assistant" and row.usage:
            return sum(
                row.usage.get(k, 0) for k in ("prompt", "cache_read", "cache_write", "completion")
            )
    return 0


def estimate_tokens(history: list[Message]) -> int:
    """About 3.5 characters a token, plus a little per message; good enough to decide early."""
    chars = sum(len(m.content) + len(m.thinking or "") for m in history)
    return int(chars / 3.5) + 10 * len(history)


class Turn:
    """The loop of one `run_turn`, as named steps."""

    def __init__(self, session: KodaSession, config: KodaConfig, sink: EngineSink, inbox: Inbox):
        self.session = session
        self.config = config
        self.sink = sink
        self.inbox = inbox
        self.db = session.db
        self.guard = LoopGuard(config.max_iterations)
        rows = self.db.messages.load(session.id)
        self.history: list[Message] = build_history(rows)
        self.tools = ToolDispatch(session, sink, inbox, self.guard, self.history)
        self.compacted = False  # at most one compaction a turn: a second would not help
        # What the provider counted last time is better than an estimate from characters.
        self.context_tokens = max(last_context_size(rows), estimate_tokens(self.history))

    async def run(self) -> None:
        await self.session.probe_model()
        continuations = 0
        while True:
            self.add_queued_text()
            await self.check_cap()
            await self.compact_if_nearly_full()
            reply = await self.query()
            self.guard.iterations += 1
            self.record_reply(reply)
            if reply.tool_calls:
                await self.tools.execute(reply.tool_calls)
                continue
            if reply.stop_reason == "max_tokens" and continuations < MAX_CONTINUATIONS:
                continuations += 1
                self.ask_to_continue()
                continue
            self.inbox.sync()  # text queued while the reply streamed earns one more step
            if not self.inbox.has_queued:
                if reply.stop_reason == "max_tokens":
                    self.sink.emit(Warn("The reply was cut off by the output token limit."))
                return

    # -- steps ---------------------------------------------------------------------------------

    def add_queued_text(self) -> None:
        text = self.inbox.take_queued()
        if text is not None:
            self.db.messages.insert(self.session.id, "user", text)
            last = self.history[-1] if self.history else None
            if last is not None and last.role == "user":  # joined, as build_history does
                joined = f"{last.content}\n\n{text}" if last.content else text
                self.history[-1] = dataclasses.replace(last, content=joined)
            else:
                self.history.append(Message(role="user", content=text))

    def keep_unsent_text(self) -> None:
        """Text queued too late for this turn is saved, so the next turn sends it."""
        text = self.inbox.take_queued()
        if text is not None:
            self.db.messages.insert(self.session.id, "user", text)
            self.sink.emit(Info("Your queued message was saved; it goes with your next prompt."))

    async def check_cap(self) -> None:
        while self.guard.at_cap:
            self.sink.emit(LoopCapReached(self.guard.cap, self.guard.recent_tools))
            action = await self.inbox.loop_decision()
            if action == "stop":
                raise TurnStopped(
                    f"stopped after {self.guard.iterations} model calls (the step cap)"
                )
            self.guard.extend(LOOP_EXTENSIONS[action])

    async def query(self) -> Reply:
        attempts = max(1, self.config.retry_attempts)
        attempt = 0
        while True:
            attempt += 1
            reply = Reply()
            try:
                await run_or_cancel(
                    stream_reply(self.session.provider, self.request(), self.sink, reply),
                    self.session.cancel,
                )
                return reply
            except Cancelled:
                self.save_partial(reply)
                raise
            except ContextOverflowError as exc:
                self.discard(reply, exc)
                if self.compacted:
                    raise TurnStopped(
                        f"the conversation still does not fit the model's context window after "
                        f"compaction ({exc.message}); start a new session or use a larger model"
                    ) from None
                await self.compact(cause=exc.message)
            except ProviderError as exc:
                self.discard(reply, exc)
                if not exc.retryable or attempt >= attempts:
                    raise
                await self.wait_before_retry(exc, attempt, attempts)

    def discard(self, reply: Reply, exc: ProviderError) -> None:
        """A reply that broke off is never kept; front ends are told to drop what they showed."""
        if reply.text or reply.thinking:
            self.sink.emit(ReplyDiscarded(exc.message))

    async def compact(self, cause: str = "") -> None:
        self.sink.emit(Info("Compacting the conversation to fit the model's context window…"))
        self.compacted = True
        try:
            history = await run_or_cancel(
                compact(self.db, self.session.id, self.session.provider, self.session.model),
                self.session.cancel,
            )
        except CompactionError as exc:
            raise TurnStopped(f"{exc} ({cause})" if cause else str(exc)) from None
        self.history[:] = history  # in place: the tool dispatch shares this list
        # What the model read is gone from its context; a Read must show files again.
        self.session.file_tracker.forget_reads()
        self.sink.emit(Info("Compacted: earlier turns are now a summary."))

    async def compact_if_nearly_full(self) -> None:
        window = self.session.provider.capabilities(self.session.model).context_window
        if not self.compacted and self.context_tokens > COMPACT_AT * window:
            await self.compact()
            self.context_tokens = estimate_tokens(self.history)

    def ask_to_continue(self) -> None:
        self.sink.emit(Info("The reply reached the output token limit; asking the model to go on."))
        self.db.messages.insert(self.session.id, "user", CONTINUE_NOTE)
        self.history.append(Message(role="user", content=CONTINUE_NOTE))

    def request(self) -> ChatRequest:
        agent, cfg = self.session.agent, self.config
        limit = self.session.provider.capabilities(self.session.model).max_output_tokens
        return ChatRequest(
            model=self.session.model,
            system=agent.system_prompt,
            messages=for_wire(self.history, self.session.wire),
            tools=list(agent.tool_definitions),
            max_tokens=min(cfg.max_tokens, limit),
            temperature=cfg.temperature,
            thinking_budget=cfg.thinking_budget,
            reasoning_effort=cfg.reasoning_effort,
        )

    async def wait_before_retry(self, exc: ProviderError, attempt: int, attempts: int) -> None:
        base = self.config.retry_base_delay * 2 ** (attempt - 1)
        delay = min(exc.retry_after if exc.retry_after is not None else base, MAX_RETRY_DELAY)
        self.sink.emit(
            Warn(f"{exc.message} — retrying in {delay:.1f}s (attempt {attempt + 1} of {attempts})")
        )
        await sleep_or_cancel(delay, self.session.cancel)

    def save_partial(self, reply: Reply) -> None:
        """Keep an interrupted reply for the record; incomplete rows never reach a provider."""
        if reply.text or reply.thinking:
            self.db.messages.insert(
                self.session.id,
                "assistant",
                reply.text,
                thinking=reply.thinking or None,
                completed=False,
            )

    def record_reply(self, reply: Reply) -> None:
        u = reply.usage
        cost = self.session.provider.cost_usd(self.session.model, u)
        signature = tag(reply.signature, self.session.wire)
        calls = tag_calls(reply.tool_calls, self.session.wire)
        self.db.messages.insert(
            self.session.id,
            "assistant",
            reply.text,
            thinking=reply.thinking or None,
            thinking_signature=signature,
            tool_calls=[tool_call_to_json(c) for c in calls],
            usage={"prompt": u.prompt, "completion": u.completion, "cache_read": u.cache_read,
                   "cache_write": u.cache_write, "thinking": u.thinking},
            cost_usd=cost,
        )  # fmt: skip
        if reply.text or reply.tool_calls:  # an empty reply is left out, as build_history does
            self.history.append(
                Message(role="assistant", content=reply.text, thinking=reply.thinking or None,
                        thinking_signature=signature, tool_calls=calls)
            )  # fmt: skip
        self.sink.emit(Usage(u.prompt, u.completion, u.cache_read, u.cache_write, u.thinking, cost))
        window = self.session.provider.capabilities(self.session.model).context_window
        used = u.prompt + u.cache_read + u.cache_write + u.completion
        self.context_tokens = used or estimate_tokens(self.history)
        self.sink.emit(ContextUsage(used=self.context_tokens, max=window))
        self.session.set_title_from_first_prompt()
