"""Background Bash with real processes: start, read, stop; nothing is left when the session ends."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from koda.sandbox.launcher import Launch
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.bash import Bash, BashOutput, BashStop
from koda.tools.processes import MAX_RUNNING, OUTPUT_CAP, BackgroundProcesses


def plain(command: str, shell: str = "/bin/sh") -> Launch:
    """How a command starts without a session's launcher: a plain shell."""
    return Launch([shell, "-c", command], None, sandboxed=False)


@pytest.fixture
async def processes() -> AsyncIterator[BackgroundProcesses]:
    registry = BackgroundProcesses()
    try:
        yield registry
    finally:
        await registry.close_all()


async def start(processes: BackgroundProcesses, ctx: ToolContext, command: str) -> ToolResult:
    return await Bash(processes).run(ctx, {"command": command, "background": True})


async def output(processes: BackgroundProcesses, ctx: ToolContext, **args: Any) -> ToolResult:
    return await BashOutput(processes).run(ctx, args)


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


async def wait_until(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


async def test_start_returns_at_once_with_an_id_and_the_first_output(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    began = time.monotonic()
    result = await start(processes, ctx, "echo ready; sleep 30")
    assert time.monotonic() - began < 2.5
    assert result.ok
    first, *rest = result.output.splitlines()
    assert first.startswith("Started bg_1 (pid ")
    assert "ready" in rest
    assert "BashOutput bg_1" in result.output
    pid = processes.get("bg_1").pid
    assert alive(pid)
    assert result.meta == {"background_id": "bg_1", "exit_code": None}


async def test_output_is_read_incrementally_and_from_any_line(
    processes: BackgroundProcesses, ctx: ToolContext, root: Path
) -> None:
    command = "echo one; echo two; while [ ! -e go ]; do sleep 0.02; done; echo three; sleep 30"
    started = await start(processes, ctx, command)
    assert started.output.splitlines()[1:3] == ["one", "two"]
    assert "[lines 1-2 of 2]" in started.output
    assert (await output(processes, ctx, id="bg_1")).output.endswith("\n(no new output)")
    (root / "go").touch()
    await wait_until(lambda: "three" in processes.get("bg_1").output_path.read_text())
    new = await output(processes, ctx, id="bg_1")
    assert new.output.splitlines()[0].startswith("bg_1 running (pid ")
    assert new.output.splitlines()[1:] == ["three"]
    assert "[lines 3-3 of 3]" in new.output
    again = await output(processes, ctx, id="bg_1")
    assert again.output.splitlines()[1:] == ["(no new output)"]
    everything = await output(processes, ctx, id="bg_1", since=1)
    assert everything.output.splitlines()[1:] == ["one", "two", "three"]
    from_two = await output(processes, ctx, id="bg_1", since="2")
    assert from_two.output.splitlines()[1:] == ["two", "three"]


async def test_lines_shown_at_start_are_not_shown_again(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    started = await start(processes, ctx, "echo hello; sleep 30")
    assert "hello" in started.output.splitlines()
    assert (await output(processes, ctx, id="bg_1")).output.endswith("\n(no new output)")


async def test_a_process_that_fails_at_once_reports_its_exit_code(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    result = await start(processes, ctx, "echo 'no such script' >&2; exit 2")
    assert not result.ok
    assert result.output.splitlines() == [
        "bg_1 exited with code 2 within 1 s; output: [lines 1-1 of 1]",
        "no such script",
    ]
    assert result.meta["exit_code"] == 2
    later = await output(processes, ctx, id="bg_1")
    assert later.output.startswith("bg_1 exited with code 2: echo")


async def test_a_line_still_being_written_waits_for_its_newline(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    await start(processes, ctx, "printf 'partial'; sleep 30")
    assert (await output(processes, ctx, id="bg_1")).output.endswith("(no new output)")
    stopped = await BashStop(processes).run(ctx, {"id": "bg_1"})
    assert stopped.output.splitlines()[1:] == ["partial"]


async def test_stop_ends_the_whole_group_even_when_term_is_ignored(
    processes: BackgroundProcesses, ctx: ToolContext, root: Path
) -> None:
    await start(processes, ctx, "trap '' TERM; sleep 60 & echo $! > child.pid; echo up; wait")
    await wait_until(lambda: (root / "child.pid").exists() and (root / "child.pid").read_text())
    child = int((root / "child.pid").read_text())
    pgid = processes.get("bg_1").pid
    assert alive(child)
    began = time.monotonic()
    result = await BashStop(processes).run(ctx, {"id": "bg_1"})
    assert time.monotonic() - began < 2
    assert result.output.startswith("bg_1 stopped; unread output:")
    assert not alive(child)
    assert group_members(pgid) == []
    after = await output(processes, ctx, id="bg_1")
    assert after.output.startswith("bg_1 stopped:")


async def test_stop_also_ends_what_an_exited_shell_left_running(
    processes: BackgroundProcesses, ctx: ToolContext, root: Path
) -> None:
    # The shell exits at once; its child keeps the group (and the output pipe) alive.
    result = await start(processes, ctx, "sleep 60 & echo $! > child.pid")
    await wait_until(lambda: (root / "child.pid").exists() and (root / "child.pid").read_text())
    child = int((root / "child.pid").read_text())
    assert alive(child)
    assert processes.get("bg_1").exit_code() == 0, result.output
    stopped = await BashStop(processes).run(ctx, {"id": "bg_1"})
    assert stopped.output.startswith("bg_1 exited with code 0")
    await wait_until(lambda: not alive(child), within=2)


async def test_close_all_leaves_nothing_running(ctx: ToolContext, root: Path) -> None:
    registry = BackgroundProcesses()
    bash = Bash(registry)
    commands = [
        "sleep 60",
        "trap '' TERM; sleep 60 & echo $! > a.pid; wait",
        "(trap '' TERM; sleep 60) & echo $! > b.pid",  # shell exits, child stays
        "yes > /dev/null",
    ]
    for command in commands:
        registry.start(command, plain(command, "bash"), root)
    await wait_until(lambda: all((root / f).exists() for f in ("a.pid", "b.pid")))
    groups = [registry.get(f"bg_{n}").pid for n in range(1, 5)]
    directory = registry.get("bg_1").output_path.parent
    assert all(group_members(g) for g in groups)
    began = time.monotonic()
    await registry.close_all()
    assert time.monotonic() - began < 3
    for g in groups:
        assert group_members(g) == [], g
    assert not directory.exists()
    with pytest.raises(ToolError, match="session is closing"):
        await bash.run(ctx, {"command": "sleep 1", "background": True})
    await registry.close_all()  # a second close is harmless


async def test_processes_die_with_koda_even_without_close_all(tmp_path: Path) -> None:
    script = (
        "import asyncio, pathlib, sys\n"
        "from koda.tools.processes import BackgroundProcesses\n"
        "registry = BackgroundProcesses()\n"
        "from koda.sandbox.launcher import Launch\n"
        "plain = Launch(['/bin/sh', '-c', 'sleep 60 & sleep 60'], None, False)\n"
        "p = registry.start('sleep 60 & sleep 60', plain, pathlib.Path('.'))\n"
        "print(p.pid, flush=True)\n"
        "asyncio.run(asyncio.sleep(0.3))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    pgid = int(done.stdout.split()[0])
    await wait_until(lambda: group_members(pgid) == [], within=3)


async def test_output_files_are_capped_and_the_process_not_blocked(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    size = OUTPUT_CAP + 3_000_000
    await start(processes, ctx, f"head -c {size} /dev/zero | tr '\\0' 'a'; echo; echo finished")
    process = processes.get("bg_1")
    await process.settle(20)
    assert process.exit_code() == 0
    written = process.output_path.stat().st_size
    assert OUTPUT_CAP <= written < OUTPUT_CAP + 200
    assert process.output_path.read_bytes().endswith(b"bytes discarded]\n")


async def test_long_output_keeps_head_and_tail_and_the_full_text(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    ctx.context_window = 100_000
    result = await start(processes, ctx, "seq 1 3000; sleep 30")
    lines = result.output.splitlines()
    assert lines[1:3] == ["1", "2"] and lines[-2] == "3000"
    assert "[... 2600 lines omitted ...]" in lines
    assert result.full_output is not None
    assert result.full_output.splitlines()[1:3001] == [str(n) for n in range(1, 3001)]


async def test_at_most_a_few_run_at_once(processes: BackgroundProcesses, ctx: ToolContext) -> None:
    bash = Bash(processes)
    for _ in range(MAX_RUNNING):
        processes.start("sleep 60", plain("sleep 60"), ctx.project_root)
    with pytest.raises(ToolError, match=f"{MAX_RUNNING} background processes are already"):
        await bash.run(ctx, {"command": "sleep 60", "background": True})
    await BashStop(processes).run(ctx, {"id": "bg_3"})
    assert (await bash.run(ctx, {"command": "sleep 60", "background": True})).ok


async def test_output_goes_to_the_given_directory(ctx: ToolContext, tmp_path: Path) -> None:
    registry = BackgroundProcesses(tmp_path / "bg")
    await Bash(registry).run(ctx, {"command": "echo kept", "background": True})
    await registry.close_all()
    assert (tmp_path / "bg" / "bg_1.log").read_text() == "kept\n"


async def test_unknown_ids_name_the_known_ones(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    with pytest.raises(ToolError, match=r"No background process .bg_1.\. None has been started\."):
        await output(processes, ctx, id="bg_1")
    await start(processes, ctx, "sleep 30")
    with pytest.raises(ToolError, match=r"'bg_7'. Known: bg_1 \(running\)."):
        await BashStop(processes).run(ctx, {"id": "bg_7"})


@pytest.mark.parametrize(("args", "message"), [
    ({}, "Missing required argument 'id'"),
    ({"id": " "}, "'id' must not be empty"),
    ({"id": 1}, "'id' must be a string"),
    ({"id": "bg_1", "since": 0}, "'since' must be at least 1"),
    ({"id": "bg_1", "since": "start"}, "'since' must be an integer"),
])  # fmt: skip
async def test_output_argument_errors(
    processes: BackgroundProcesses, ctx: ToolContext, args: dict[str, Any], message: str
) -> None:
    processes.start("sleep 30", plain("sleep 30"), ctx.project_root)
    with pytest.raises(ToolError, match=message):
        await BashOutput(processes).run(ctx, args)


async def test_without_a_registry_background_is_refused_and_not_offered(
    ctx: ToolContext,
) -> None:
    assert "background" not in Bash().parameters["properties"]
    assert "background" in Bash(BackgroundProcesses()).parameters["properties"]
    with pytest.raises(ToolError, match="No background processes here"):
        await Bash().run(ctx, {"command": "sleep 30", "background": True})


async def test_background_false_runs_in_the_foreground(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    result = await Bash(processes).run(ctx, {"command": "echo hi", "background": "false"})
    assert result.output == "Exit code: 0\nhi"
    with pytest.raises(ToolError, match="'background' must be a boolean"):
        await Bash(processes).run(ctx, {"command": "echo hi", "background": 1})


async def test_a_foreground_timeout_points_to_background(
    processes: BackgroundProcesses, ctx: ToolContext
) -> None:
    result = await Bash(processes).run(ctx, {"command": "sleep 30", "timeout": 1})
    assert result.output.endswith("\n[for servers and watchers, use background: true]")
    assert "background" not in (await Bash().run(ctx, {"command": "sleep 30", "timeout": 1})).output


def test_effects_and_summaries(processes: BackgroundProcesses) -> None:
    assert Bash(processes).effect({"command": "ls", "background": True}) is Effect.READ_ONLY
    assert BashOutput(processes).effect({"id": "bg_1"}) is Effect.READ_ONLY
    assert BashStop(processes).effect({"id": "bg_1"}) is Effect.LOCAL_MUTATION
    assert BashOutput(processes).summary({"id": "bg_2"}) == "BashOutput: bg_2"
    assert BashStop(processes).summary({"id": "bg_2"}) == "BashStop: bg_2"


def test_definitions_stay_small(processes: BackgroundProcesses) -> None:
    for tool in (Bash(processes), BashOutput(processes), BashStop(processes)):
        definition = {"name": tool.name, "description": tool.description}
        assert len(json.dumps({**definition, "parameters": tool.parameters})) < 700, tool.name
