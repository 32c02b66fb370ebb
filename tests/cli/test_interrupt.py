"""Ctrl+C (and SIGTERM) during a run: exit 130 at once, and the session stays resumable."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import Koda, assert_valid_history, koda_command, write_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SLOW_STORY = "Once upon a time there was a very slow model. " * 10
# About 120 deltas a quarter of a second apart: half a minute if nothing stops it.
SLOW = [{"text": SLOW_STORY, "chunk_size": 4, "delay_ms": 250}]


class Running:
    """`koda ARGS` started in the background, with its stdout read without buffering."""

    def __init__(self, koda: Koda, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*koda_command(), *args],
            cwd=koda.project,
            env=koda.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = b""

    def wait_for_output(self, timeout: float = 20) -> None:
        """Until the first bytes of the answer appear on stdout."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while not self.stdout:
            left = deadline - time.monotonic()
            assert left > 0, "koda printed nothing"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                assert chunk, "stdout closed before anything was printed"
                self.stdout += chunk

    def signal_and_wait(self, sig: int, timeout: float = 10) -> tuple[int, float, str, str]:
        """Send `sig`; the exit code, the seconds it took to exit, stdout and stderr."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        elapsed = time.monotonic() - start
        text = (self.stdout + out).decode("utf-8", "replace")
        return self.proc.returncode, elapsed, text, err.decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_while_streaming_then_continue(koda: Koda, sig: int) -> None:
    write_script(koda.script, SLOW)
    run = Running(koda, "-p", "tell me a story")
    try:
        run.wait_for_output()
        time.sleep(0.6)  # a few more deltas
        code, elapsed, out, err = run.signal_and_wait(sig)
    finally:
        run.kill()
    assert code == 130, err
    assert elapsed < 2, f"took {elapsed:.1f}s to stop"
    assert "Traceback" not in err
    assert "interrupted" in err and "koda -c" in err
    assert out.startswith("Once"), out
    assert len(out.strip()) < len(SLOW_STORY), "the stream was not cut short"

    proc = koda.run("-c", "-p", "carry on", script=[{"text": "resumed"}])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "resumed\n"
    messages = koda.requests()[0]["messages"]
    assert_valid_history(messages)
    assert not any(m["role"] == "assistant" for m in messages), "the cut reply must not be sent"
    assert "tell me a story" in messages[0]["content"]
    assert "carry on" in messages[-1]["content"]

    # The cut reply is kept for the record, marked as interrupted.
    exported = koda.run("sessions", "export", koda.sessions_json()[0]["id"]).stdout
    printed = out.rstrip("\n")
    assert f"## Assistant (interrupted)\n\n{printed}\n" in exported


def test_interrupt_in_json_mode_reports_cancelled(koda: Koda) -> None:
    write_script(koda.script, [{"text": "partial answer", "chunk_size": 1, "delay_ms": 300}])
    run = Running(koda, "-p", "slowly", "--output-format", "stream-json")
    try:
        run.wait_for_output()  # the init line
        time.sleep(0.5)
        code, elapsed, out, err = run.signal_and_wait(signal.SIGINT)
    finally:
        run.kill()
    assert code == 130, err
    assert elapsed < 2
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["type"] == "init"
    assert lines[-2]["type"] == "turn_end"
    assert lines[-2]["reason"]["kind"] == "cancelled"
    assert lines[-1]["type"] == "result"
    assert lines[-1]["subtype"] == "cancelled"
    assert lines[-1]["is_error"] is True


def pids_running(marker: str) -> list[int]:
    """Host processes whose command line holds `marker` (a sandboxed command's own $$ is a pid
    in its namespace, meaningless out here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def test_interrupt_during_a_command_stops_it_and_closes_the_call(koda: Koda) -> None:
    marker = f"30.{os.getpid()}{time.monotonic_ns() % 100_000}"
    script = [
        {
            "text": "Running it.",
            "tool_calls": [
                {"name": "Bash", "args": {"command": f"echo on > started.txt; exec sleep {marker}"}}
            ],
        }
    ]
    write_script(koda.script, script)
    run = Running(koda, "-p", "run the slow thing", "--mode", "auto")
    started = koda.project / "started.txt"
    try:
        run.wait_for_output()
        deadline = time.monotonic() + 10
        while not (started.exists() and started.read_text().strip()):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.05)
        code, elapsed, _, err = run.signal_and_wait(signal.SIGINT)
    finally:
        run.kill()
    assert code == 130, err
    assert elapsed < 2, f"took {elapsed:.1f}s to stop"
    assert "Traceback" not in err
    deadline = time.monotonic() + 3
    while pids_running(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    if survivors := pids_running(marker):
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        pytest.fail("the command kept running after koda exited")

    proc = koda.run("-c", "-p", "what happened?", script=[{"text": "It was interrupted."}])
    assert proc.returncode == 0, proc.stderr
    messages = koda.requests()[0]["messages"]
    assert_valid_history(messages)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user"]
    assert "cancelled" in messages[2]["content"]
