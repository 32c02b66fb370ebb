"""Bash with real subprocesses: output, streaming, timeouts, cancellation and process cleanup."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.bash import Bash


async def bash(ctx: ToolContext, command: str, **args: Any) -> ToolResult:
    return await Bash().run(ctx, {"command": command, **args})


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie waiting to be reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_dead(pid: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def wait_for_file(path: Path, within: float = 5.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


async def test_success_reports_exit_code_and_output(ctx: ToolContext) -> None:
    result = await bash(ctx, "echo hello; echo world")
    assert result.ok
    assert result.output == "Exit code: 0\nhello\nworld"
    assert result.full_output is None
    assert result.meta["exit_code"] == 0


async def test_failure_is_not_ok_and_keeps_stderr(ctx: ToolContext) -> None:
    result = await bash(ctx, "echo oops >&2; exit 3")
    assert not result.ok
    assert result.output == "Exit code: 3\noops"


async def test_no_output(ctx: ToolContext) -> None:
    assert (await bash(ctx, "true")).output == "Exit code: 0\n(no output)"


async def test_runs_in_the_project_root_with_empty_stdin(ctx: ToolContext, root: Path) -> None:
    result = await bash(ctx, "pwd; cat; echo done")
    assert result.output == f"Exit code: 0\n{os.path.realpath(root)}\ndone"


async def test_lines_stream_while_the_command_runs(ctx: ToolContext) -> None:
    seen: list[tuple[float, str, str]] = []
    ctx.emit_output = lambda line, stream: seen.append((time.monotonic(), line, stream))
    start = time.monotonic()
    await bash(ctx, "echo first; sleep 0.6; echo second >&2")
    end = time.monotonic()
    assert [(line, stream) for _, line, stream in seen] == [
        ("first", "stdout"),
        ("second", "stderr"),
    ]
    # "first" arrived while the command was still sleeping, not when it finished.
    assert seen[0][0] - start < end - start - 0.4


async def test_timeout_stops_the_command(ctx: ToolContext) -> None:
    start = time.monotonic()
    result = await bash(ctx, "echo started; sleep 30", timeout=1)
    assert time.monotonic() - start < 3
    assert not result.ok
    assert result.output.startswith("Command timed out after 1 s")
    assert "started" in result.output
    assert result.meta["timed_out"] is True


async def test_cancel_returns_fast_and_kills_the_process_group(
    ctx: ToolContext, root: Path
) -> None:
    task = asyncio.create_task(bash(ctx, "sleep 30 & echo $! > child.pid; wait"))
    pid = int(await wait_for_file(root / "child.pid"))
    assert alive(pid)
    start = time.monotonic()
    ctx.cancel.cancel()
    result = await task
    assert time.monotonic() - start < 1.5
    assert not result.ok
    assert result.output.startswith("Command cancelled")
    assert await wait_dead(pid)


async def test_task_cancellation_also_kills_the_group(ctx: ToolContext, root: Path) -> None:
    task = asyncio.create_task(bash(ctx, "sleep 30 & echo $! > child.pid; wait"))
    pid = int(await wait_for_file(root / "child.pid"))
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 1.5
    assert await wait_dead(pid)


async def test_term_ignoring_processes_are_killed(ctx: ToolContext, root: Path) -> None:
    command = "trap '' TERM; sleep 30 & echo $! > child.pid; wait"
    task = asyncio.create_task(bash(ctx, command))
    pid = int(await wait_for_file(root / "child.pid"))
    start = time.monotonic()
    ctx.cancel.cancel()
    await task
    assert time.monotonic() - start < 1.5
    assert await wait_dead(pid)


async def test_background_process_holding_output_does_not_hang(
    ctx: ToolContext, root: Path
) -> None:
    start = time.monotonic()
    result = await bash(ctx, "sleep 30 & echo $! > child.pid; echo launched")
    assert time.monotonic() - start < 3
    assert result.ok
    assert "launched" in result.output
    assert "background processes that kept the output open were stopped" in result.output
    assert await wait_dead(int((root / "child.pid").read_text()))


async def test_background_job_with_redirected_output_keeps_running(
    ctx: ToolContext, root: Path
) -> None:
    start = time.monotonic()
    result = await bash(ctx, "sleep 30 > /dev/null 2>&1 & echo $! > child.pid")
    assert time.monotonic() - start < 1
    assert result.output == "Exit code: 0\n(no output)"
    pid = int((root / "child.pid").read_text())
    try:
        assert alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)


async def test_long_output_keeps_head_and_tail_and_the_full_text(ctx: ToolContext) -> None:
    ctx.context_window = 100_000
    result = await bash(ctx, "seq 1 5000")
    lines = result.output.splitlines()
    assert lines[:3] == ["Exit code: 0", "1", "2"]
    assert lines[-1] == "5000"
    assert "[... 4600 lines omitted ...]" in lines
    assert len(lines) < 410
    assert result.full_output is not None
    assert result.full_output.splitlines()[1:] == [str(n) for n in range(1, 5001)]


async def test_wide_output_is_cut_by_bytes(ctx: ToolContext) -> None:
    ctx.context_window = 100_000
    result = await bash(ctx, "for i in $(seq 1 100); do printf '%01000d\\n' $i; done")
    assert len(result.output) < 32_000
    assert "lines omitted" in result.output
    assert result.full_output is not None and len(result.full_output) > 100_000


async def test_line_without_newline_and_huge_line(ctx: ToolContext) -> None:
    result = await bash(ctx, "printf 'a%.0s' $(seq 1 70000); echo; printf tail")
    assert result.output.endswith("\ntail")
    assert "more chars]" in result.output


@pytest.mark.parametrize(("args", "message"), [
    ({}, "Missing required argument 'command'"),
    ({"command": "  "}, "'command' must not be empty"),
    ({"command": "ls", "timeout": 0}, "'timeout' must be at least 1"),
    ({"command": "ls", "timeout": 601}, "'timeout' must be at most 600"),
    ({"command": "ls", "timeout": "soon"}, "'timeout' must be an integer"),
])  # fmt: skip
async def test_argument_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        await Bash().run(ctx, args)


async def test_numeric_string_timeout_is_accepted(ctx: ToolContext) -> None:
    assert (await bash(ctx, "echo ok", timeout="5")).ok


def test_effect_comes_from_the_classifier_and_summary_is_one_line() -> None:
    assert Bash().effect({"command": "ls -la"}) is Effect.READ_ONLY
    assert Bash().effect({"command": "rm -rf build"}) is Effect.DESTRUCTIVE
    assert Bash().effect({"command": 5}) is Effect.LOCAL_MUTATION
    assert Bash().summary({"command": "pytest -q"}) == "Bash: pytest -q"
    assert Bash().summary({"command": "cd x\nmake"}) == "Bash: cd x…"
