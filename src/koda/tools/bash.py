"""Bash: run a shell command in the project, streaming its output, stoppable at any moment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from typing import Any, Literal

from koda.cancel import CancelToken
from koda.tools.args import one_line, opt_int, req_str, scaled
from koda.tools.base import Effect, OutputEmitter, ToolContext, ToolError, ToolResult
from koda.tools.bash_effect import classify
from koda.tools.schema import arguments, integer, string

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 600
MAX_LINES = 400
MAX_BYTES = 30_000
LINE_CUT = 2000
# What one command may hold in memory; `yes` would otherwise fill it in seconds.
KEEP_BYTES = 10_000_000
READ_CHUNK = 65_536
# How long processes get to exit after SIGTERM before SIGKILL.
KILL_GRACE = 0.5
# How long output may stay open after the shell exits before we assume a background
# process holds it.
PIPE_GRACE = 0.5
POLL = 0.02

Stream = Literal["stdout", "stderr"]
Ending = Literal["done", "held", "timeout", "cancelled", "interrupted"]


class _Output:
    """Combined stdout/stderr lines in arrival order, passed on to the UI as they come."""

    def __init__(self, emit: OutputEmitter) -> None:
        self.lines: list[str] = []
        self.dropped = 0
        self._kept = 0
        self._emit = emit

    def add(self, line: str, stream: Stream) -> None:
        if self._kept >= KEEP_BYTES:
            self.dropped += 1
            return
        self._kept += len(line) + 1
        self.lines.append(line)
        self._emit(line, stream)


class Bash:
    name = "Bash"
    description = (
        "Run a shell command in the project root; returns the exit code and combined "
        "stdout/stderr (long output keeps head and tail). stdin is empty. Background jobs "
        "are stopped when the command ends unless their output is redirected to a file."
    )

    def __init__(self) -> None:
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["command"],
            command=string("Shell command to run."),
            timeout=integer(f"Seconds (default {DEFAULT_TIMEOUT}, max {MAX_TIMEOUT})."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        command = args.get("command")
        return classify(command) if isinstance(command, str) else Effect.LOCAL_MUTATION

    def summary(self, args: dict[str, Any]) -> str:
        return f"Bash: {one_line(args.get('command', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        command = req_str(args, "command", allow_empty=False)
        timeout = opt_int(args, "timeout", DEFAULT_TIMEOUT, min=1, max=MAX_TIMEOUT)
        try:
            proc = await asyncio.create_subprocess_exec(
                shutil.which("bash") or "/bin/sh",
                "-c",
                command,
                cwd=ctx.project_root,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                # Its own process group, so stopping it reaches everything it started.
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolError(f"Could not start the shell: {exc}.") from exc
        output = _Output(ctx.emit_output)
        ending = await _supervise(proc, output, ctx.cancel, timeout)
        return _result(ctx, proc.returncode, ending, timeout, output)


async def _supervise(
    proc: asyncio.subprocess.Process, output: _Output, cancel: CancelToken, timeout: int
) -> Ending:
    assert proc.stdout is not None and proc.stderr is not None  # both were asked for as PIPE
    pumps = asyncio.gather(
        _pump(proc.stdout, "stdout", output), _pump(proc.stderr, "stderr", output)
    )
    exited = asyncio.ensure_future(_wait_exit(proc, pumps))
    cancelled = asyncio.ensure_future(cancel.wait())
    # Stays "interrupted" only if the awaiting task itself is cancelled.
    ending: Ending = "interrupted"
    try:
        done, _ = await asyncio.wait(
            {exited, cancelled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if exited in done:
            ending = "held" if exited.result() else "done"
        else:
            ending = "cancelled" if cancelled in done else "timeout"
    finally:
        exited.cancel()
        cancelled.cancel()
        if ending != "done":
            await _stop_group(proc.pid)
        await _drain(pumps)
    return ending


async def _pump(stream: asyncio.StreamReader, name: Stream, output: _Output) -> None:
    # read() rather than readline(): readline fails on lines longer than the stream limit.
    pending = b""
    while chunk := await stream.read(READ_CHUNK):
        *lines, pending = (pending + chunk).split(b"\n")
        for raw in lines:
            output.add(_decode(raw), name)
        if len(pending) > READ_CHUNK:
            output.add(_decode(pending), name)
            pending = b""
    if pending:
        output.add(_decode(pending), name)


def _decode(raw: bytes) -> str:
    return raw.removesuffix(b"\r").decode("utf-8", errors="replace")


async def _wait_exit(proc: asyncio.subprocess.Process, pumps: asyncio.Future[Any]) -> bool:
    """Wait for the shell to exit; True if something it left behind still holds the output.

    Process.wait() only returns once the pipes close, so the exit itself is polled for.
    """
    while proc.returncode is None:
        done, _ = await asyncio.wait({pumps}, timeout=POLL)
        if done:
            await proc.wait()
            return False
    done, _ = await asyncio.wait({pumps}, timeout=PIPE_GRACE)
    return not done


async def _stop_group(pgid: int) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after a short grace."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while _group_alive(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # Either error means the group is already gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return _has_running_member(pgid)


def _has_running_member(pgid: int) -> bool:
    """Whether a group member is more than a zombie.

    killpg(pgid, 0) also succeeds for zombies, and a container's PID 1 may be slow to reap
    the orphans, which would make every stop wait out the full grace. /proc tells them apart.
    """
    try:
        entries = [e.path for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return True  # no /proc (macOS): trust killpg
    for entry in entries:
        try:
            with open(f"{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


async def _drain(pumps: asyncio.Future[Any]) -> None:
    """Collect the output still in the pipes; give up on pipes held by escaped processes."""
    try:
        await asyncio.wait({pumps}, timeout=PIPE_GRACE)
    finally:
        if not pumps.done():
            pumps.cancel()
            # Nobody awaits the pumps after this; retrieve their end so asyncio does not log it.
            pumps.add_done_callback(lambda f: f.cancelled() or f.exception())
    if not pumps.cancelled():
        pumps.result()  # surface a failure in the pumps rather than losing it


def _result(
    ctx: ToolContext, code: int | None, ending: Ending, timeout: int, output: _Output
) -> ToolResult:
    if ending == "timeout":
        header = f"Command timed out after {timeout} s"
    elif ending == "cancelled":
        header = "Command cancelled"
    elif code is not None and code < 0:
        header = f"Killed by signal {_signal_name(-code)}"
    else:
        header = f"Exit code: {code}"
    notes = []
    if ending == "held":
        notes.append("[background processes that kept the output open were stopped]")
    if output.dropped:
        notes.append(f"[{output.dropped} more lines were discarded after {KEEP_BYTES} bytes]")
    body = "\n".join(output.lines) if output.lines else "(no output)"
    short = _shorten(output.lines, scaled(ctx, MAX_LINES), scaled(ctx, MAX_BYTES))
    return ToolResult(
        "\n".join([header, short or body, *notes]),
        ok=ending in ("done", "held") and code == 0,
        full_output="\n".join([header, body, *notes]) if short else None,
        meta={"exit_code": code, "timed_out": ending == "timeout"},
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _shorten(lines: list[str], max_lines: int, max_bytes: int) -> str | None:
    """Head and tail of long output with the middle left out; None if it fits as is."""
    if len(lines) <= max_lines and sum(len(line) + 1 for line in lines) <= max_bytes:
        return None
    lines = [_cut(line) for line in lines]
    head = _fit(lines, max_lines // 2, max_bytes // 2)
    tail = _fit(lines[head:][::-1], max_lines - head, max_bytes // 2)
    omitted = len(lines) - head - tail
    middle = [f"[... {omitted} lines omitted ...]"] if omitted else []
    return "\n".join([*lines[:head], *middle, *lines[len(lines) - tail :]])


def _fit(lines: list[str], max_lines: int, max_bytes: int) -> int:
    """How many of the first lines fit both budgets."""
    used = 0
    for count, line in enumerate(lines[:max_lines]):
        used += len(line) + 1
        if used > max_bytes:
            return count
    return min(len(lines), max_lines)


def _cut(line: str) -> str:
    if len(line) <= LINE_CUT:
        return line
    return line[:LINE_CUT] + f" [... {len(line) - LINE_CUT} more chars]"
