"""What the attack tests share: a scene on the host to attack, and one Bash call in Auto mode.

Every attack runs the way a model would run it: a scripted provider asks for one Bash call in
a real session in Auto mode, and the front end approves every approval request (the user said
yes to everything, so only the sandbox stands in the way). The tests then look at the host
itself — files, processes, the proxy's refusals — rather than trusting what the command said.

The scene lives under /var/tmp, not under the host's /tmp: inside the sandbox /tmp is the
session's own folder, so a victim under the host's /tmp would be out of reach for that reason
alone, and a test could not tell the sandbox's protection from the missing folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from proxy_helpers import TcpServer

from koda.engine.commands import ApprovalDecision, ApprovalResponse, EngineCommand
from koda.engine.events import ApprovalRequest, EngineEvent, ToolCallResult, TurnEnd
from koda.sandbox.proxy import Refusal
from koda.sandbox.status import sandbox_status
from koda.store import Store

if TYPE_CHECKING:
    from conftest import Harness

# A bound on how long a broken test may wait, never a speed requirement.
WAIT = 15.0
# The interpreter running the tests: a Python every sandboxed command can find and run.
PY = shlex.quote(sys.executable)
KEY = "sk-ant-koda-attack-0123456789"  # a fake API key, stored where Koda keeps keys


def sandbox_ready() -> bool:
    status = sandbox_status()
    return status.available and status.backend == "bwrap"


needs_sandbox = pytest.mark.skipif(
    not sandbox_ready(), reason="the bubblewrap sandbox is not available here"
)


def unique(prefix: str = "koda-attack") -> str:
    """A name no other test or process uses: a marker to look for on the host."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def approve_everything(event: EngineEvent) -> EngineCommand | None:
    """A front end whose user says yes to every approval request."""
    if isinstance(event, ApprovalRequest):
        return ApprovalResponse(event.id, ApprovalDecision("approve"))
    return None


async def run_in_auto(
    harness: Harness, command: str, *, timeout: int | None = None, prompt: str = "go ahead"
) -> ToolCallResult:
    """One Bash call, as a model would make it, in a new Auto-mode session; its result.

    `prompt`: the user's message, stored in the session's database before the call runs.
    """
    args: dict[str, object] = {"command": command}
    if timeout is not None:
        args["timeout"] = timeout
    script: list[dict[str, Any]] = [
        {"tool_calls": [{"id": "attack", "name": "Bash", "args": args}]},
        {"text": "done"},
    ]
    session = harness.session(script, mode="auto")
    assert session.launcher.sandboxed, "the attack would not run inside the sandbox"
    sink = await harness.turn(session, prompt, approve_everything, timeout=(timeout or 120) + 60.0)
    end = sink.events[-1]
    assert isinstance(end, TurnEnd) and end.reason.kind == "complete", end
    results = [e for e in sink.events if isinstance(e, ToolCallResult) and e.id == "attack"]
    assert len(results) == 1, sink.events
    return results[0]


def refusals(harness: Harness) -> list[Refusal]:
    """What the last session's egress proxies refused."""
    return harness.sessions[-1].launcher.refusals()


def refused_hosts(harness: Harness) -> set[str]:
    return {refusal.host for refusal in refusals(harness)}


@dataclass
class Scene:
    """A place on the host to attack, visible (read-only) inside the sandbox.

    `project`: a git repository, the session's project. `home`: the fake HOME, with
    credentials. `koda_home`: KODA_HOME, with the session's live database and stored keys.
    `victim`: a file outside the project that no command may change.
    """

    root: Path
    project: Path
    home: Path
    koda_home: Path
    victim: Path
    harness: Harness

    def settings(self, text: str) -> None:
        """The user's koda.toml (read when the next session is created)."""
        (self.koda_home / "koda.toml").write_text(text, encoding="utf-8")

    def make_home_the_project(self) -> None:
        """Koda started in the home folder: all of HOME is the (writable) project."""
        self.harness.project = self.home

    async def run(
        self, command: str, *, timeout: int | None = None, prompt: str = "go ahead"
    ) -> ToolCallResult:
        return await run_in_auto(self.harness, command, timeout=timeout, prompt=prompt)


VICTIM_TEXT = "the original content\n"
HOME_FILES = {
    ".bashrc": "# the user's shell setup\n",
    ".ssh/authorized_keys": "ssh-ed25519 AAAA the-users-own-key\n",
    ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    ".aws/credentials": "[default]\naws_secret_access_key = wJalr\n",
    ".netrc": "machine example.com login me password hunter2\n",
    ".git-credentials": "https://me:hunter2@example.com\n",
    ".config/gh/hosts.yml": "github.com:\n    oauth_token: gho_x\n",
    ".cargo/registry/index.txt": "",
}


@contextlib.contextmanager
def build_scene(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    """A scene under /var/tmp with HOME and KODA_HOME pointing into it; removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="koda-attack-", dir="/var/tmp"))
    try:
        home = _home(root / "home")
        koda_home = root / "koda-home"
        koda_home.mkdir()
        (koda_home / "keys.json").write_text(json.dumps({"anthropic": KEY}), encoding="utf-8")
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("KODA_HOME", str(koda_home))
        project = _project(root / "project")  # after HOME: the user's git settings stay out
        victim = root / "victim.txt"
        victim.write_text(VICTIM_TEXT, encoding="utf-8")
        store = Store.open(koda_home / "koda.db")
        built = type(harness)(store, project)
        try:
            yield Scene(root, project, home, koda_home, victim, built)
        finally:
            built.close()
            store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "hello.txt").write_text("hello\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=WAIT)
    return root


def _home(home: Path) -> Path:
    for name, text in HOME_FILES.items():
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (home / ".cargo" / "bin").mkdir()
    return home


def snapshot(root: Path) -> dict[str, bytes | str | None]:
    """Everything under `root`: each file's bytes, each link's target, None for a folder."""
    found: dict[str, bytes | str | None] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = os.readlink(path)
        elif path.is_dir():
            found[name] = None
        else:
            found[name] = path.read_bytes()
    return found


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker` (this test process excluded)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry.name}/cmdline", "rb") as f:
            if marker.encode() in f.read():
                found.append(int(entry.name))
    return found


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting until {what}")
        time.sleep(0.05)


def counting_server(unix_path: str | None = None) -> TcpServer:
    """A listener on the host (TCP on 127.0.0.1, or a Unix socket) that counts connections
    (`accepted`) and closes each at once."""
    return TcpServer(lambda conn: None, unix_path=unix_path)
