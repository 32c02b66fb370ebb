"""What every tool is: a schema, an effect, and an async run against a ToolContext."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from koda.cancel import CancelToken
from koda.providers.base import ImageData
from koda.store import Store

if TYPE_CHECKING:
    from koda.sandbox.launcher import CommandLauncher
    from koda.tools.processes import BackgroundProcesses


class Effect(StrEnum):
    READ_ONLY = "read_only"
    REMOTE_ACTION = "remote_action"
    LOCAL_MUTATION = "local_mutation"
    DESTRUCTIVE = "destructive"


EFFECT_RANK = {
    Effect.READ_ONLY: 0,
    Effect.REMOTE_ACTION: 1,
    Effect.LOCAL_MUTATION: 1,
    Effect.DESTRUCTIVE: 2,
}

OutputEmitter = Callable[[str, Literal["stdout", "stderr"]], None]


class FileTracker(Protocol):
    """What tools need to know about files this session touched (see engine.file_tracker)."""

    def record_created(self, path: Path) -> None: ...

    def is_owned(self, path: Path) -> bool: ...

    def record_read(self, path: Path, digest: str) -> None:
        """The file's content (a hash of it) as the model last saw it in full."""
        ...

    def read_digest(self, path: Path) -> str | None: ...


# Asks the user a question with optional answer choices; None when nobody can answer.
AskUser = Callable[[str, list[str]], Awaitable[str | None]]


async def nobody_to_ask(question: str, options: list[str]) -> str | None:
    return None


@dataclass
class ToolContext:
    project_root: Path
    cancel: CancelToken
    file_tracker: FileTracker
    emit_output: OutputEmitter = lambda line, stream: None
    context_window: int = 128_000
    session_id: str = ""
    store: Store | None = None  # for tools that read or keep session data (recall, todos)
    ask_user: AskUser = nobody_to_ask
    data_dir: Path | None = None  # Koda's own data folder (user memory, checkpoints)
    processes: BackgroundProcesses | None = None  # the session's background commands
    # How commands start (sandbox, environment, proxies); None: a plain subprocess.
    launcher: CommandLauncher | None = None


@dataclass
class ToolResult:
    """What the model sees (`output`), and optionally the full text kept in the store."""

    output: str
    ok: bool = True
    full_output: str | None = None
    images: list[ImageData] = field(default_factory=list)  # e.g. Read of a picture
    # What the engine acts on besides the text: "todo" (items → a todo_update event) and
    # "allowed_tools" (a skill narrowing the tools while it is active).
    meta: dict[str, Any] = field(default_factory=dict)


class ToolError(Exception):
    """A failure the model should read and act on; it becomes an `ok=False` result."""


class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]

    def effect(self, args: dict[str, Any]) -> Effect: ...

    def summary(self, args: dict[str, Any]) -> str:
        """One line saying what this call does, for approvals and progress lines."""
        ...

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult: ...
