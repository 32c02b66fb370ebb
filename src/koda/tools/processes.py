"""Process groups: stopping them for good, and a session's registry of background processes.

Every command runs in its own process group, so stopping it reaches everything it started.
A background process writes its combined output to a file (capped) that BashOutput reads;
the session that owns the registry stops them all when it closes.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from koda.sandbox.launcher import Launch
from koda.tools.base import ToolError

# How long processes get to exit after SIGTERM before SIGKILL.
KILL_GRACE = 0.5
POLL = 0.02
# What one background process may write to its output file; later output is discarded.
OUTPUT_CAP = 10_000_000
READ_CHUNK = 65_536
# Runaway loops of "start a server" should not pile up processes.
MAX_RUNNING = 8
# How long a stop waits for the killed shell to be reaped (a process in uninterruptible
# sleep ignores even SIGKILL until its I/O ends).
REAP_WAIT = 5.0


async def stop_group(pgid: int) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after a short grace."""
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while group_alive(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
    signal_group(pgid, signal.SIGKILL)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    # Either error means the group is already gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
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


@dataclass
class OutputSlice:
    """Lines `first`.. of a background process's output (1-based), and how many exist so far."""

    first: int
    lines: list[str]
    total: int


@dataclass
class BackgroundProcess:
    id: str
    command: str
    output_path: Path
    popen: subprocess.Popen[bytes]
    pump: threading.Thread
    launch: Launch
    stopped: bool = False
    next_line: int = 1  # first line BashOutput has not shown yet
    _code: int | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exit_code(self) -> int | None:
        """The shell's exit status (negative: killed by that signal), None while it runs.

        Peeked at with WNOWAIT rather than reaped: while the zombie stays, its pid (the process
        group id) cannot be reused, so signalling the group later never reaches a stranger.
        """
        if self._code is not None or self.popen.returncode is not None:
            return self._code if self._code is not None else self.popen.returncode
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped by someone else: poll() records that
            return self.popen.poll()
        if info is not None:
            exited = info.si_code == os.CLD_EXITED
            self._code = info.si_status if exited else -info.si_status
        return self._code

    async def settle(self, seconds: float) -> None:
        """Wait until the shell exits and its output is written, or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while self.exit_code() is None and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        if self.exit_code() is not None:
            await asyncio.to_thread(self.pump.join, max(0.0, deadline - time.monotonic()))

    def status(self) -> str:
        code = self.exit_code()
        if self.stopped:
            return "stopped"
        if code is None:
            return "running"
        if code < 0:
            return f"killed by signal {_signal_name(-code)}"
        return f"exited with code {code}"


class BackgroundProcesses:
    """One session's background processes: started, read, stopped, all ended by close_all().

    Output files go to `directory`, or to a temporary folder removed by close_all().
    """

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._own_directory: Path | None = None
        self._processes: dict[str, BackgroundProcess] = {}
        self._count = 0
        self._closed = False
        self._at_exit = False

    def start(self, command: str, launch: Launch, cwd: Path) -> BackgroundProcess:
        if self._closed:
            raise ToolError("The session is closing; no new background process can start.")
        running = [p.id for p in self._processes.values() if p.status() == "running"]
        if len(running) >= MAX_RUNNING:
            raise ToolError(
                f"{len(running)} background processes are already running "
                f"({', '.join(running)}); stop one with BashStop first."
            )
        self._count += 1
        id = f"bg_{self._count}"
        path = self._output_dir() / f"{id}.log"
        output = open(path, "wb")  # noqa: SIM115 - the pump thread owns and closes it
        try:
            popen = subprocess.Popen(
                launch.argv,
                cwd=cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            output.close()
            launch.cleanup()
            raise ToolError(f"Could not start the shell: {exc}.") from exc
        assert popen.stdout is not None  # asked for as PIPE
        pump = threading.Thread(
            target=_pump, args=(popen.stdout, output), name=f"koda-{id}", daemon=True
        )
        pump.start()
        process = BackgroundProcess(id, command, path, popen, pump, launch)
        self._processes[id] = process
        if not self._at_exit:
            # If Koda dies without closing the session, its children still must not outlive it.
            atexit.register(self.kill_now)
            self._at_exit = True
        return process

    def get(self, id: str) -> BackgroundProcess:
        process = self._processes.get(id.strip())
        if process is None:
            known = ", ".join(f"{p.id} ({p.status()})" for p in self._processes.values())
            raise ToolError(
                f"No background process {id!r}. "
                + (f"Known: {known}." if known else "None has been started.")
            )
        return process

    def read(self, id: str, since: int | None = None) -> OutputSlice:
        """Output from line `since` on, or the lines not read yet; marks them as read."""
        process = self.get(id)
        finished = process.exit_code() is not None and not process.pump.is_alive()
        lines = _lines(process.output_path, complete_only=not finished)
        first = process.next_line if since is None else since
        first = max(1, min(first, len(lines) + 1))
        process.next_line = max(process.next_line, len(lines) + 1)
        return OutputSlice(first, lines[first - 1 :], len(lines))

    async def stop(self, id: str) -> BackgroundProcess:
        process = self.get(id)
        await self._stop(process)
        return process

    async def close_all(self) -> None:
        """Stop every process group this session started and remove its temporary files."""
        self._closed = True
        await asyncio.gather(*(self._stop(p) for p in self._processes.values()))
        if self._at_exit:
            atexit.unregister(self.kill_now)
            self._at_exit = False
        if self._own_directory is not None:
            shutil.rmtree(self._own_directory, ignore_errors=True)
            self._own_directory = None

    async def _stop(self, process: BackgroundProcess) -> None:
        # The group may outlive the shell (children it left behind), so it is always signalled.
        if process.popen.returncode is not None:
            process.launch.cleanup()
            return  # reaped: its group id may belong to someone else by now
        if process.exit_code() is None:
            process.stopped = True
        await stop_group(process.pid)
        deadline = time.monotonic() + REAP_WAIT
        while process.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
        # Whatever the group wrote last is in the pipe; let the pump finish writing it.
        await asyncio.to_thread(process.pump.join, KILL_GRACE)
        process.launch.cleanup()

    def kill_now(self) -> None:
        for process in self._processes.values():
            if process.popen.returncode is None:
                signal_group(process.pid, signal.SIGKILL)

    def _output_dir(self) -> Path:
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            return self._directory
        if self._own_directory is None:
            self._own_directory = Path(tempfile.mkdtemp(prefix="koda-bg-"))
        return self._own_directory


def _pump(pipe: IO[bytes], out: IO[bytes]) -> None:
    """Copy the process's output to its file as it comes, up to OUTPUT_CAP bytes."""
    fd = pipe.fileno()
    written = 0
    with pipe, out:
        while chunk := os.read(fd, READ_CHUNK):
            if written < OUTPUT_CAP:
                kept = chunk[: OUTPUT_CAP - written]
                out.write(kept)
                written += len(kept)
                if written >= OUTPUT_CAP:
                    out.write(f"\n[output past {OUTPUT_CAP:,} bytes discarded]\n".encode())
                out.flush()
            # Past the cap the pipe is still drained, so the process never blocks on it.


def _lines(path: Path, *, complete_only: bool) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    if complete_only:
        # A line still being written is held back until its newline arrives.
        data = data[: data.rfind(b"\n") + 1]
    if not data:
        return []
    # split("\n"), not splitlines(): form feeds and other separators stay inside their line.
    lines = data.removesuffix(b"\n").split(b"\n")
    return [line.removesuffix(b"\r").decode("utf-8", errors="replace") for line in lines]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
