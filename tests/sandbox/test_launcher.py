"""The session's command launcher: sandbox or not, the environment, the proxies, the limits."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from koda.cancel import CancelToken
from koda.sandbox.launcher import CommandLauncher
from koda.sandbox.policy import limits_from
from koda.sandbox.status import SandboxStatus, sandbox_status
from koda.tools.base import ToolContext
from koda.tools.bash import Bash

needs_sandbox = pytest.mark.skipif(
    not sandbox_status().available, reason="bubblewrap cannot run here"
)
NO_SANDBOX = SandboxStatus(False, "none", "bubblewrap (bwrap) is not installed", "install it")


class Tracker:
    def record_created(self, path: Path) -> None: ...
    def is_owned(self, path: Path) -> bool:
        return False

    def record_read(self, path: Path, digest: str) -> None: ...
    def read_digest(self, path: Path) -> str | None:
        return None


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.fixture
def launchers() -> Iterator[list[CommandLauncher]]:
    made: list[CommandLauncher] = []
    yield made
    for launcher in made:
        launcher.close()


def launcher_for(
    made: list[CommandLauncher], project: Path, status: SandboxStatus, **kw: object
) -> CommandLauncher:
    launcher = CommandLauncher(project, status, koda_dirs=[], **kw)  # type: ignore[arg-type]
    made.append(launcher)
    return launcher


async def bash(launcher: CommandLauncher, command: str, timeout: int = 30) -> str:
    ctx = ToolContext(launcher.project_root, CancelToken(), Tracker(), launcher=launcher)
    return (await Bash().run(ctx, {"command": command, "timeout": timeout})).output


async def test_without_a_sandbox_commands_still_get_the_reduced_environment_and_proxies(
    project: Path, launchers: list[CommandLauncher]
) -> None:
    parent = {"PATH": "/usr/bin:/bin", "HOME": str(project), "OPENAI_API_KEY": "sk-x"}
    launcher = launcher_for(launchers, project, NO_SANDBOX, parent_env=parent)
    launch = launcher.launch("/bin/sh", "env", project)
    assert launch.argv == ["/bin/sh", "-c", "env"] and not launch.sandboxed
    assert launch.env is not None and "OPENAI_API_KEY" not in launch.env
    assert launch.env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert launch.env["ALL_PROXY"].startswith("socks5h://127.0.0.1:")
    output = await bash(launcher, "env")
    assert "sk-x" not in output and "HTTPS_PROXY=http://127.0.0.1:" in output


@needs_sandbox
async def test_a_proxy_that_cannot_start_is_said_once_and_commands_still_run(
    project: Path, launchers: list[CommandLauncher], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Unix socket path longer than the kernel allows: the proxies cannot listen.
    deep = Path(tempfile.mkdtemp()) / ("d" * 100)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    launcher = launcher_for(launchers, project, sandbox_status())
    first = await bash(launcher, "echo ran; curl -sS -m 2 http://example.com || true")
    assert first.startswith("Exit code: 0\nran")
    assert "the egress proxy could not start" in first and "commands have no network" in first
    second = await bash(launcher, "echo again")
    assert "egress proxy" not in second


@needs_sandbox
async def test_a_refused_host_is_named_to_the_model(
    project: Path, launchers: list[CommandLauncher]
) -> None:
    launcher = launcher_for(launchers, project, sandbox_status())
    output = await bash(launcher, "curl -sS -m 5 https://refused.koda.test/ ; echo done")
    assert "CONNECT tunnel failed, response 403" in output
    assert "[the egress proxy refused refused.koda.test: not on the network allowlist" in output
    assert "refused" not in (await bash(launcher, "echo quiet")).split("\n", 1)[1]


@needs_sandbox
async def test_a_flood_of_output_stops_the_command_at_the_limit(
    project: Path, launchers: list[CommandLauncher]
) -> None:
    launcher = launcher_for(launchers, project, sandbox_status(), limits=limits_from(output_mb=1))
    output = await bash(launcher, "yes koda")
    assert output.startswith("Command stopped: its output passed 1,048,576 bytes")


@needs_sandbox
async def test_limits_reach_the_command(project: Path, launchers: list[CommandLauncher]) -> None:
    limits = limits_from(memory_mb=700, cpu_seconds=7)
    launcher = launcher_for(launchers, project, sandbox_status(), limits=limits)
    output = await bash(launcher, "ulimit -t; ulimit -v; ulimit -n; ulimit -c")
    assert output.splitlines()[1:] == ["7", str(700 * 1024), "4096", "0"]


@needs_sandbox
async def test_close_removes_the_session_folder_and_stops_the_proxies(
    project: Path, launchers: list[CommandLauncher]
) -> None:
    launcher = launcher_for(launchers, project, sandbox_status())
    await bash(launcher, "echo scratch > /tmp/scratch.txt")
    folder = launcher.policy().tmp_dir.parent
    network = launcher.policy().network
    assert (folder / "tmp" / "scratch.txt").read_text() == "scratch\n"
    assert network is not None and network.http_socket.exists()
    launcher.close()
    assert not folder.exists()


async def test_folders_of_dead_sessions_are_removed_by_the_next_one(
    project: Path, launchers: list[CommandLauncher], tmp_path: Path
) -> None:
    import subprocess
    import sys

    # A Koda process killed before it could clean up leaves its session folder behind.
    code = (
        "import os, pathlib, sys\n"
        "from koda.sandbox.launcher import CommandLauncher\n"
        "from koda.sandbox.status import SandboxStatus\n"
        "l = CommandLauncher(pathlib.Path(sys.argv[1]), SandboxStatus(False, 'none', 'x'), "
        "koda_dirs=[])\n"
        "l.launch('/bin/sh', 'true', pathlib.Path(sys.argv[1]))\n"
        "print(l.policy().tmp_dir.parent, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(project)], capture_output=True, text=True, check=True
    )
    left = Path(done.stdout.strip())
    assert left.is_dir()
    launcher_for(launchers, project, NO_SANDBOX).launch("/bin/sh", "true", project)
    assert not left.exists()
