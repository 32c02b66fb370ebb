"""Headless mode: one prompt in, the answer out, with nobody at the keyboard."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any, Protocol

from koda._version import __version__
from koda.cli.args import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, MainOptions
from koda.cli.writers import JsonWriter, RunSummary, StreamJsonWriter, TextWriter
from koda.config import KodaConfig, from_environment
from koda.config_file import ConfigFileError
from koda.engine import events as ev
from koda.engine.agent import KodaAgent
from koda.engine.commands import (
    ApprovalDecision,
    ApprovalResponse,
    AskUserResponse,
    EngineCommand,
    Interrupt,
    LoopDecision,
)
from koda.engine.session import KodaSession
from koda.engine.trust import ModeRefused, TrustMode, start_mode
from koda.paths import database_path
from koda.providers.catalog import ProviderSetupError, choose_model, create_provider
from koda.sandbox.status import sandbox_status
from koda.store import SessionRow, Store, StoreError
from koda.store.sessions import AmbiguousSessionError, SessionNotFoundError


class Writer(Protocol):
    summary: RunSummary

    def emit(self, event: ev.EngineEvent) -> None: ...

    def finish(self, session_id: str, extra: dict[str, Any]) -> None: ...


class UsageError(Exception):
    """Bad input from the user: exit 2 with this message."""


class NobodyHere:
    """Answers, on the user's behalf, what a turn would ask a human; then passes events on."""

    def __init__(
        self, writer: Writer, commands: asyncio.Queue[EngineCommand], mode: TrustMode, yes: bool
    ):
        self.writer, self.commands, self.mode, self.yes = writer, commands, mode, yes

    def emit(self, event: ev.EngineEvent) -> None:
        self.writer.emit(event)
        if isinstance(event, ev.ApprovalRequest):
            self.commands.put_nowait(ApprovalResponse(event.id, self._decide(event)))
        elif isinstance(event, ev.LoopCapReached):
            self.commands.put_nowait(LoopDecision("stop"))
        elif isinstance(event, ev.AskUserRequest):
            self.commands.put_nowait(AskUserResponse(event.id, ""))

    def _decide(self, event: ev.ApprovalRequest) -> ApprovalDecision:
        if self.yes:
            return ApprovalDecision("approve")
        # Auto runs changes by itself; only Safe has a milder way out than approving everything.
        how = "`--yes` (or `--mode auto`)" if self.mode == TrustMode.SAFE else "`--yes`"
        return ApprovalDecision(
            "reject_auto",
            reason=(
                f"Koda is running headless in {self.mode.value} mode and nobody can approve "
                f"'{event.detail}'. Do what you can without it and tell the user it needs "
                f"{how} to be allowed."
            ),
        )


def run_headless(options: MainOptions) -> int:
    try:
        return asyncio.run(_run(options))
    except UsageError as exc:
        return _setup_failed(options, str(exc), EXIT_USAGE)
    except (ProviderSetupError, StoreError, ConfigFileError, ModeRefused) as exc:
        return _setup_failed(options, str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        print("koda: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _setup_failed(options: MainOptions, message: str, code: int) -> int:
    """Before any turn ran: the reason on stderr, and a result object for JSON readers."""
    print(f"koda: {message}", file=sys.stderr)
    if options.output_format != "text":
        failure = {"type": "result", "subtype": "error", "is_error": True, "result": "",
                   "session_id": None, "errors": [message]}  # fmt: skip
        print(json.dumps(failure), flush=True)
    return code


async def _run(options: MainOptions) -> int:
    config = from_environment().with_overrides(
        provider=options.provider, model=options.model, base_url=options.base_url,
        max_iterations=options.max_turns, max_tokens=options.max_tokens,
        thinking_budget=options.thinking_budget, reasoning_effort=options.reasoning_effort,
    )  # fmt: skip
    # The sandbox probe runs a subprocess: in a thread, while the rest is set up.
    probe = asyncio.ensure_future(asyncio.to_thread(sandbox_status))
    agent = KodaAgent.create(options.project_root)  # a bad koda.toml stops here
    db = Store.open(database_path())
    try:
        row = _earlier_session(options, agent, db)
        stored = row.mode if row is not None else None
        provider = create_provider(config)
        try:
            mode, notice = start_mode(options.mode, stored, await probe)
            config = config.with_overrides(model=await choose_model(provider, config))
            if row is None:
                session = KodaSession.create(agent, db, provider, mode, config)
            else:
                session = KodaSession.resume(agent, db, provider, row, mode, config)
            if notice is not None:
                session.notices.append(notice)
            return await _turn(options, session, config)
        finally:
            await provider.aclose()
    finally:
        db.close()


def _earlier_session(options: MainOptions, agent: KodaAgent, db: Store) -> SessionRow | None:
    """The session to resume, None for a new one; UsageError if the asked-for one is not there."""
    if options.resume:
        try:
            return db.sessions.find(options.resume)
        except (SessionNotFoundError, AmbiguousSessionError) as exc:
            raise UsageError(str(exc)) from None
    if options.continue_last:
        last = db.sessions.latest(str(agent.project_root))
        if last is None:
            raise UsageError(f"no earlier session in {agent.project_root} to continue")
        return last
    return None


def _writer(options: MainOptions) -> Writer:
    if options.output_format == "json":
        return JsonWriter(sys.stdout)
    if options.output_format == "stream-json":
        return StreamJsonWriter(sys.stdout)
    return TextWriter(sys.stdout, sys.stderr)


async def _turn(options: MainOptions, session: KodaSession, config: KodaConfig) -> int:
    writer = _writer(options)
    extra = {"model": session.model, "provider": session.provider.name, "mode": session.mode.value}
    if isinstance(writer, StreamJsonWriter):
        writer.init(
            {
                "session_id": session.id,
                "cwd": str(session.agent.project_root),
                "koda_version": __version__,
                "tools": session.agent.catalog.names(),
                **extra,
            }
        )
    commands: asyncio.Queue[EngineCommand] = asyncio.Queue()
    sink = NobodyHere(writer, commands, session.mode, options.yes)
    session.add_user_message(options.prompt)
    try:
        with _interrupts(commands):
            await session.run_turn(config, [], sink, commands)
    finally:
        await session.close()  # background commands end with the run
    writer.finish(session.id, extra)
    return _exit_code(writer.summary)


def _exit_code(summary: RunSummary) -> int:
    if summary.end is None or summary.end.kind == "error":
        return EXIT_ERROR
    return EXIT_INTERRUPTED if summary.end.kind == "cancelled" else EXIT_OK


class _interrupts:
    """Ctrl+C or SIGTERM interrupts the turn cleanly; a second Ctrl+C leaves at once."""

    def __init__(self, commands: asyncio.Queue[EngineCommand]) -> None:
        self.commands = commands
        self.count = 0

    def __enter__(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._fire)

    def _fire(self) -> None:
        self.count += 1
        if self.count > 1:
            raise SystemExit(EXIT_INTERRUPTED)
        self.commands.put_nowait(Interrupt())

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
