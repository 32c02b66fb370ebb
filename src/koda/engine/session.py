"""KodaSession: one conversation, its store rows, provider, trust mode and cancel token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from koda.cancel import Cancelled, CancelToken
from koda.config import KodaConfig
from koda.engine.agent import KodaAgent
from koda.engine.commands import EngineCommand
from koda.engine.events import Error, TurnEnd, TurnEndReason, TurnStart, Warn
from koda.engine.file_tracker import FileTracker
from koda.engine.inbox import Inbox
from koda.engine.sink import EngineSink
from koda.engine.stopped import TurnStopped
from koda.engine.title import title_from_prompt
from koda.engine.trust import ModeRefused, TrustMode, auto_refusal
from koda.engine.turn import Turn
from koda.paths import data_dir, koda_dirs
from koda.providers.base import ImageData, LlmProvider, ProviderError
from koda.providers.hosts import find_host
from koda.sandbox.launcher import CommandLauncher
from koda.sandbox.policy import limits_from
from koda.sandbox.status import sandbox_status
from koda.store import SessionRow, Store
from koda.tools.processes import BackgroundProcesses
from koda.undo import Checkpoints

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0


class KodaSession:
    def __init__(
        self,
        id: str,
        agent: KodaAgent,
        db: Store,
        provider: LlmProvider,
        mode: TrustMode,
        *,
        model: str,
        title_set: bool = False,
        home: Path | None = None,
    ) -> None:
        self.id = id
        self.agent = agent
        self.db = db
        self.provider = provider
        self.mode = mode
        self.model = model
        self.cancel = CancelToken()
        self.file_tracker = FileTracker(db, id)
        self.title_set = title_set
        self.always_allow: set[str] = set()
        # Said once, as warnings at the start of the next turn (e.g. why the mode is not Auto).
        self.notices: list[str] = []
        self._probed: str | None = None
        self._retired: list[LlmProvider] = []
        # Set by a skill with `allowed-tools` while it is active; None means every tool.
        self.allowed_tools: set[str] | None = None
        self.data_dir = home or data_dir()  # `home`: a throwaway one (the demo, tests)
        self.processes = BackgroundProcesses()
        self.launcher = command_launcher(agent, home)
        self.checkpoints = Checkpoints(agent.project_root, self.data_dir)
        self._turn_id: str | None = None
        self._checkpointed_turn: str | None = None

    @classmethod
    def create(
        cls,
        agent: KodaAgent,
        db: Store,
        provider: LlmProvider,
        mode: TrustMode,
        config: KodaConfig,
        *,
        home: Path | None = None,
    ) -> KodaSession:
        model = config.model or provider.default_model
        row = db.sessions.create(str(agent.project_root), mode.value, provider.name, model)
        return cls(row.id, agent, db, provider, mode, model=model, home=home)

    @classmethod
    def resume(
        cls,
        agent: KodaAgent,
        db: Store,
        provider: LlmProvider,
        row: SessionRow,
        mode: TrustMode,
        config: KodaConfig,
    ) -> KodaSession:
        model = config.model or provider.default_model
        db.sessions.update(row.id, mode=mode.value, provider=provider.name, model=model)
        return cls(row.id, agent, db, provider, mode, model=model, title_set=row.title is not None)

    def add_user_message(self, text: str, images: Sequence[ImageData] = ()) -> None:
        self.db.messages.insert(
            self.id,
            "user",
            text,
            images=[{"media_type": i.media_type, "data": i.data} for i in images],
        )

    @property
    def wire(self) -> str:
        """The wire format the provider speaks; signatures are only valid within one."""
        host = find_host(self.provider.name)
        return host.wire if host is not None else self.provider.name

    def set_mode(self, mode: TrustMode) -> None:
        """Switch trust mode; Auto is refused (ModeRefused) where commands cannot be sandboxed."""
        status = sandbox_status()
        if mode == TrustMode.AUTO and not status.available:
            raise ModeRefused(auto_refusal(status))
        self.mode = mode
        self.db.sessions.update(self.id, mode=mode.value)

    def update_provider(self, config: KodaConfig) -> None:
        """Switch provider and model from `config`; the stored history stays as it is."""
        from koda.providers.catalog import create_provider

        new = create_provider(config)
        self._retired.append(self.provider)  # its connections close before the next turn
        self.provider = new
        self.model = config.model or self.provider.default_model
        self._probed = None
        self.db.sessions.update(self.id, provider=self.provider.name, model=self.model)

    def set_title_from_first_prompt(self) -> None:
        """Title the session once, after its first exchange, from the first prompt."""
        if self.title_set:
            return
        first = self.db.messages.first_user_text(self.id) or ""
        self.db.sessions.set_title_once(self.id, title_from_prompt(first))
        self.title_set = True

    async def before_changes(self) -> None:
        """Checkpoint the project's files once a turn, before the turn's first change, so
        `koda undo` can take the whole turn back."""
        if self._checkpointed_turn == self._turn_id:
            return
        self._checkpointed_turn = self._turn_id
        label = title_from_prompt(self.db.messages.last_user_text(self.id) or "")
        await self.checkpoints.save(label)

    async def probe_model(self) -> None:
        """Ask the provider once per model what it knows (its context window); bounded wait."""
        if self._probed == self.model:
            return
        self._probed = self.model
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.provider.probe(self.model), PROBE_TIMEOUT)

    def interrupt(self) -> None:
        self.cancel.cancel()

    async def run_turn(
        self,
        config: KodaConfig,
        pending_images: Sequence[ImageData],
        sink: EngineSink,
        commands: asyncio.Queue[EngineCommand] | None,
    ) -> None:
        """Answer the latest user message. TurnStart comes first and TurnEnd last, always."""
        turn_id = uuid.uuid4().hex
        self._turn_id = turn_id
        self.cancel.reset()
        inbox = Inbox(commands, self.cancel)
        inbox.absorb_queued_text()  # what was sent between turns; stale answers are dropped
        sink.emit(TurnStart(turn_id))
        reason = TurnEndReason("complete")
        try:
            await self._close_retired()
            self._attach_images(pending_images)
            self._say_notices(sink)
            async with inbox:
                turn = Turn(self, config, sink, inbox)
                try:
                    await turn.run()
                finally:
                    inbox.absorb_queued_text()
                    turn.keep_unsent_text()
        except Cancelled:
            reason = TurnEndReason("cancelled")
        except asyncio.CancelledError:
            sink.emit(TurnEnd(turn_id, TurnEndReason("cancelled")))
            raise
        except TurnStopped as exc:
            reason = self._fail(sink, str(exc))
        except ProviderError as exc:
            reason = self._fail(sink, exc.message)
        except Exception as exc:
            log.exception("turn failed")
            reason = self._fail(sink, f"internal error: {type(exc).__name__}: {exc}")
        if self.cancel.is_cancelled and reason.kind != "cancelled":
            reason = TurnEndReason("cancelled")
        sink.emit(TurnEnd(turn_id, reason))

    def _fail(self, sink: EngineSink, message: str) -> TurnEndReason:
        sink.emit(Error(message))
        return TurnEndReason("error", message)

    def _attach_images(self, images: Sequence[ImageData]) -> None:
        last = self.db.messages.last_user_id(self.id) if images else None
        if last is not None:
            self.db.messages.add_images(
                last, [{"media_type": i.media_type, "data": i.data} for i in images]
            )

    def _say_notices(self, sink: EngineSink) -> None:
        while self.notices:
            sink.emit(Warn(self.notices.pop(0)))

    async def _close_retired(self) -> None:
        while self._retired:
            with contextlib.suppress(Exception):
                await self._retired.pop().aclose()

    async def close(self) -> None:
        """End the session: its background commands stop, its connections close."""
        self.cancel.cancel()
        try:
            await self.processes.close_all()
        finally:
            self.launcher.close()
            await self._close_retired()
            await self.provider.aclose()


def command_launcher(agent: KodaAgent, home: Path | None) -> CommandLauncher:
    """How this session's commands start: the sandbox, its limits and egress hosts from the
    settings; every folder where Koda keeps data hidden from them."""
    settings = agent.settings
    limits = settings.sandbox
    return CommandLauncher(
        agent.project_root,
        sandbox_status(),
        koda_dirs=[*([home] if home is not None else []), *koda_dirs()],
        network_allow=settings.network_allow,
        limits=limits_from(
            memory_mb=limits.memory_mb,
            cpu_seconds=limits.cpu_seconds,
            processes=limits.processes,
            output_mb=limits.output_mb,
        ),
        extra_writable=limits.writable,
    )
