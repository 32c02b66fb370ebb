"""Fixtures for the engine, store and provider tests: real SQLite files, real temp projects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from koda.config import KodaConfig
from koda.engine.commands import EngineCommand
from koda.engine.events import EngineEvent
from koda.engine.sink import CollectingSink
from koda.providers.base import Message
from koda.store import Store

if TYPE_CHECKING:
    from koda.engine.session import KodaSession
    from koda.providers.scripted import ScriptedProvider
    from koda.tools.catalog import ToolCatalog

FAST = KodaConfig(retry_base_delay=0.01)

Reaction = Callable[[EngineEvent], "EngineCommand | list[EngineCommand] | None"]


class ReactiveSink(CollectingSink):
    """Collects events with their arrival time and answers some of them with commands.

    Each reaction sees every event; the command (or commands) it returns are put on `commands`,
    as a front end would do on a key press.
    """

    def __init__(self, commands: asyncio.Queue[EngineCommand], *reactions: Reaction) -> None:
        super().__init__()
        self.commands = commands
        self.reactions = list(reactions)
        self.times: list[float] = []
        self.sent: list[tuple[float, EngineCommand]] = []

    def emit(self, event: EngineEvent) -> None:
        super().emit(event)
        self.times.append(time.monotonic())
        for react in self.reactions:
            answer = react(event)
            for command in answer if isinstance(answer, list) else [answer]:
                if command is not None:
                    self.send(command)

    def send(self, command: EngineCommand) -> None:
        self.sent.append((time.monotonic(), command))
        self.commands.put_nowait(command)

    def time_of(self, cls: type[Any]) -> float:
        for t, e in zip(self.times, self.events, strict=True):
            if isinstance(e, cls):
                return t
        raise AssertionError(f"no {cls.__name__} event")


class Harness:
    """Builds sessions over one real store and one real project directory."""

    def __init__(self, store: Store, project: Path) -> None:
        self.store = store
        self.project = project
        self.sessions: list[KodaSession] = []

    def provider(
        self, script: list[dict[str, Any]], log_path: Path | None = None
    ) -> ScriptedProvider:
        import json

        from koda.providers.scripted import ScriptedProvider, load_script

        return ScriptedProvider(
            load_script(json.dumps(script)), log_path=str(log_path) if log_path else None
        )

    def session(
        self,
        script: list[dict[str, Any]],
        mode: str = "auto",
        catalog: ToolCatalog | None = None,
        config: KodaConfig = FAST,
    ) -> KodaSession:
        from koda.engine.agent import KodaAgent
        from koda.engine.session import KodaSession
        from koda.engine.trust import parse_mode

        agent = KodaAgent.create(self.project, catalog)
        session = KodaSession.create(
            agent, self.store, self.provider(script), parse_mode(mode), config
        )
        self.sessions.append(session)
        return session

    def close(self) -> None:
        """What a closed session would stop: background commands, proxies, its /tmp."""
        for session in self.sessions:
            session.processes.kill_now()
            session.launcher.close()

    async def turn(
        self,
        session: KodaSession,
        prompt: str | None,
        *reactions: Reaction,
        config: KodaConfig = FAST,
        commands: asyncio.Queue[EngineCommand] | None = None,
        timeout: float = 20.0,
    ) -> ReactiveSink:
        """Add `prompt` (unless None) as a user message and run one turn to its end."""
        if prompt is not None:
            session.add_user_message(prompt)
        queue: asyncio.Queue[EngineCommand] = commands if commands is not None else asyncio.Queue()
        sink = ReactiveSink(queue, *reactions)
        await asyncio.wait_for(session.run_turn(config, [], sink, queue), timeout)
        return sink


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store.open(tmp_path / "koda.db")
    yield db
    db.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "hello.txt").write_text("hello world\nsecond line\n", encoding="utf-8")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def main():\n    return 42\n", encoding="utf-8")
    return root


@pytest.fixture
def harness(store: Store, project: Path) -> Iterator[Harness]:
    built = Harness(store, project)
    yield built
    built.close()


def assert_valid_history(messages: list[Message]) -> None:
    """What every provider accepts: calls answered in order, no orphans, no user after user."""
    pending: set[str] = set()
    for i, msg in enumerate(messages):
        if msg.role == "tool":
            assert msg.tool_call_id in pending, (
                f"message {i}: result {msg.tool_call_id} has no open call"
            )
            pending.discard(msg.tool_call_id)
            continue
        assert not pending, f"message {i}: calls {pending} are not answered before a {msg.role}"
        if msg.role == "user" and i > 0:
            assert messages[i - 1].role != "user", f"message {i}: two user messages in a row"
        if msg.role == "assistant":
            assert msg.content or msg.tool_calls, f"message {i}: empty assistant message"
            pending = {c.id for c in msg.tool_calls}
            assert len(pending) == len(msg.tool_calls), f"message {i}: duplicate call ids"
    assert not pending, f"calls {pending} are never answered"
    if messages:
        assert messages[0].role == "user"


@pytest.fixture
def check_history() -> Callable[[list[Message]], None]:
    """The history validator, for tests (conftest is not importable by name)."""
    return assert_valid_history


@pytest.fixture(autouse=True)
def private_koda_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the developer's own sessions, settings or stored keys."""
    home = tmp_path_factory.mktemp("koda-home")
    monkeypatch.setenv("KODA_HOME", str(home))
    return home
