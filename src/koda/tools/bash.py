"""Bash: run a shell command in the project, streaming its output, stoppable at any moment.

With `background`, the command keeps running after the call returns; BashOutput reads what it
printed since and BashStop ends it. The session's BackgroundProcesses registry owns them.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
from typing import Any, Literal

from koda.cancel import CancelToken
from koda.sandbox.launcher import Launch
from koda.tools.args import one_line, opt_bool, opt_int, req_str, scaled
from koda.tools.base import Effect, OutputEmitter, ToolContext, ToolError, ToolResult
from koda.tools.bash_effect import classify
from koda.tools.processes import BackgroundProcess, BackgroundProcesses, OutputSlice, stop_group
from koda.tools.schema import arguments, boolean, integer, string

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 600
MAX_LINES = 400
MAX_BYTES = 30_000
LINE_CUT = 2000
# What one command may hold in memory; `yes` would otherwise fill it in seconds.
KEEP_BYTES = 10_000_000
READ_CHUNK = 65_536
# How long a background start waits for first output (or an early failure) before returning.
START_WAIT = 1.0
# How long output may stay open after the shell exits before we assume a background
# process holds it.
PIPE_GRACE = 0.5
POLL = 0.02

Stream = Literal["stdout", "stderr"]
Ending = Literal["done", "held", "timeout", "cancelled", "interrupted", "flooded"]


class _Output:
    """Combined stdout/stderr lines in arrival order, passed on to the UI as they come.

    With a `limit`, `flooded` is set once that many bytes have come: the command is stopped.
    """

    def __init__(self, emit: OutputEmitter, limit: int | None = None) -> None:
        self.lines: list[str] = []
        self.dropped = 0
        self.total = 0
        self.limit = limit
        self.flooded = asyncio.Event()
        self._kept = 0
        self._emit = emit

    def add(self, line: str, stream: Stream) -> None:
        self.total += len(line) + 1
        if self.limit is not None and self.total > self.limit:
            self.flooded.set()
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
        "stdout/stderr (long output keeps head and tail). stdin is empty; & jobs end with the "
        "command. Sandboxed: only the project and /tmp are writable; network reaches code "
        "hosts and package registries only."
    )

    def __init__(
        self, processes: BackgroundProcesses | None = None, *, background: bool = False
    ) -> None:
        # A registry given here wins; else the session's (ctx.processes); with neither
        # (sub-agents), background runs are refused.
        self._processes = processes
        # Per instance: a shared class-level dict could be mutated by any caller.
        self.parameters: dict[str, Any] = arguments(
            ["command"],
            command=string("Shell command to run."),
            timeout=integer(f"Seconds (default {DEFAULT_TIMEOUT}, max {MAX_TIMEOUT})."),
        )
        if processes is not None or background:
            self.parameters["properties"]["background"] = boolean(
                "Keep it running (servers, watchers); returns an id for BashOutput/BashStop."
            )

    def effect(self, args: dict[str, Any]) -> Effect:
        command = args.get("command")
        return classify(command) if isinstance(command, str) else Effect.LOCAL_MUTATION

    def summary(self, args: dict[str, Any]) -> str:
        return f"Bash: {one_line(args.get('command', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        command = req_str(args, "command", allow_empty=False)
        timeout = opt_int(args, "timeout", DEFAULT_TIMEOUT, min=1, max=MAX_TIMEOUT)
        if opt_bool(args, "background"):
            return await self._start_background(ctx, command)
        launch = prepare(ctx, command)
        try:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *launch.argv,
                    cwd=ctx.project_root,
                    env=launch.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    # Its own process group, so stopping it reaches everything it started.
                    start_new_session=True,
                )
            except OSError as exc:
                raise ToolError(f"Could not start the shell: {exc}.") from exc
            output = _Output(ctx.emit_output, launch.output_limit)
            ending = await _supervise(proc, output, ctx.cancel, timeout)
        finally:
            launch.cleanup()
        result = _result(ctx, proc.returncode, ending, timeout, output)
        if ending == "timeout" and "background" in self.parameters["properties"]:
            result.output += "\n[for servers and watchers, use background: true]"
        for note in launch.notes():
            result.output += "\n" + note
        return result

    async def _start_background(self, ctx: ToolContext, command: str) -> ToolResult:
        if "background" not in self.parameters["properties"]:
            raise ToolError("No background processes here; run the command in the foreground.")
        processes = registry(self._processes, ctx)
        process = processes.start(command, prepare(ctx, command), ctx.project_root)
        await process.settle(START_WAIT)
        code = process.exit_code()
        if code is None:
            header = f"Started {process.id} (pid {process.pid}); output so far:"
            hint = f"[still running: BashOutput {process.id} reads more, BashStop ends it]"
        else:
            header = f"{process.id} {process.status()} within {START_WAIT:g} s; output:"
            hint = ""
        result = _slice_result(ctx, header, processes.read(process.id), hint)
        result.ok = code in (None, 0)
        result.meta = {"background_id": process.id, "exit_code": code}
        return result


class BashOutput:
    name = "BashOutput"
    description = "New output of a background Bash process, and whether it is still running."

    def __init__(self, processes: BackgroundProcesses | None = None) -> None:
        self._processes = processes
        self.parameters: dict[str, Any] = arguments(
            ["id"],
            id=string("Id from Bash, like bg_1."),
            since=integer("Line to start from (1 = all); default: lines not shown yet."),
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        return f"BashOutput: {one_line(args.get('id', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        id = req_str(args, "id", allow_empty=False)
        since = opt_int(args, "since", 0, min=1) if args.get("since") is not None else None
        processes = registry(self._processes, ctx)
        process = processes.get(id)
        header = f"{process.id} {_describe(process)}: {one_line(process.command)}"
        return _slice_result(ctx, header, processes.read(id, since), "")


class BashStop:
    name = "BashStop"
    description = "Stop a background Bash process (and everything it started)."

    def __init__(self, processes: BackgroundProcesses | None = None) -> None:
        self._processes = processes
        self.parameters: dict[str, Any] = arguments(["id"], id=string("Id from Bash, like bg_1."))

    def effect(self, args: dict[str, Any]) -> Effect:
        # It only ends what this session started, but that is still a change on the machine.
        return Effect.LOCAL_MUTATION

    def summary(self, args: dict[str, Any]) -> str:
        return f"BashStop: {one_line(args.get('id', ''))}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        id = req_str(args, "id", allow_empty=False)
        processes = registry(self._processes, ctx)
        process = await processes.stop(id)
        unread = processes.read(id)
        return _slice_result(ctx, f"{process.id} {process.status()}; unread output:", unread, "")


def registry(own: BackgroundProcesses | None, ctx: ToolContext) -> BackgroundProcesses:
    processes = own or ctx.processes
    if processes is None:
        raise ToolError("No background processes here; run the command in the foreground.")
    return processes


def _shell() -> str:
    return shutil.which("bash") or "/bin/sh"


def prepare(ctx: ToolContext, command: str) -> Launch:
    """The session's way to start `command` (sandbox, environment), or a plain shell."""
    if ctx.launcher is not None:
        return ctx.launcher.launch(_shell(), command, ctx.project_root)
    return Launch([_shell(), "-c", command], None, sandboxed=False)


def _describe(process: BackgroundProcess) -> str:
    status = process.status()
    return f"{status} (pid {process.pid})" if status == "running" else status


def _slice_result(ctx: ToolContext, header: str, out: OutputSlice, note: str) -> ToolResult:
    """A background process's output lines under a header, long output shortened."""
    if out.lines:
        last = out.first + len(out.lines) - 1
        header += f" [lines {out.first}-{last} of {out.total}]"
    body = "\n".join(out.lines) if out.lines else "(no new output)"
    short = _shorten(out.lines, scaled(ctx, MAX_LINES), scaled(ctx, MAX_BYTES))
    notes = [note] if note else []
    return ToolResult(
        "\n".join([header, short or body, *notes]),
        full_output="\n".join([header, body, *notes]) if short else None,
    )


async def _supervise(
    proc: asyncio.subprocess.Process, output: _Output, cancel: CancelToken, timeout: int
) -> Ending:
    assert proc.stdout is not None and proc.stderr is not None  # both were asked for as PIPE
    pumps = asyncio.gather(
        _pump(proc.stdout, "stdout", output), _pump(proc.stderr, "stderr", output)
    )
    exited = asyncio.ensure_future(_wait_exit(proc, pumps))
    cancelled = asyncio.ensure_future(cancel.wait())
    flooded = asyncio.ensure_future(output.flooded.wait())
    # Stays "interrupted" only if the awaiting task itself is cancelled.
    ending: Ending = "interrupted"
    try:
        done, _ = await asyncio.wait(
            {exited, cancelled, flooded}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if exited in done:
            ending = "held" if exited.result() else "done"
        elif flooded in done:
            ending = "flooded"
        else:
            ending = "cancelled" if cancelled in done else "timeout"
    finally:
        exited.cancel()
        cancelled.cancel()
        flooded.cancel()
        if ending != "done":
            await stop_group(proc.pid)
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
    elif ending == "flooded":
        header = f"Command stopped: its output passed {output.limit:,} bytes"
    elif ending == "cancelled":
        header = "Command cancelled"
    elif code is not None and code < 0:
        header = f"Killed by signal {_signal_name(-code)}"
    else:
        header = f"Exit code: {code}" + _signal_hint(code)
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


def _signal_hint(code: int | None) -> str:
    """Shells (and the sandbox) report a process killed by signal N as 128 + N."""
    if code is None or not 128 < code < 128 + signal.NSIG:
        return ""
    name = _signal_name(code - 128)
    return "" if name.isdigit() else f" (128 + {name}: killed by that signal)"


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
