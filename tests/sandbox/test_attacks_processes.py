"""Attacks with processes from Bash in Auto mode: limits hold, nothing outlives the command,
nothing outside the sandbox can be signalled, no privilege can be gained.

The limits are lowered through the user's koda.toml so the runaway commands end quickly; for
each limit one more test reads it inside the sandbox to show the default is in force.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from attack_helpers import (
    PY,
    Scene,
    build_scene,
    needs_sandbox,
    processes_with,
    unique,
    wait_for,
)

from koda.sandbox import cgroup
from koda.sandbox.policy import MIB, Limits, default_memory_limit

if TYPE_CHECKING:
    from conftest import Harness

pytestmark = needs_sandbox


@pytest.fixture
def scene(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    with build_scene(harness, monkeypatch) as built:
        yield built


@pytest.fixture
def host_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A process on the host with a unique marker (containing "pytest") in its command line."""
    marker = unique("pytest-bystander")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    try:
        yield proc, marker
    finally:
        proc.kill()
        proc.wait()


def long_sleep() -> str:
    """A `sleep` whose argument is unique, so its process can be found on the host."""
    return f"sleep 300.{int.from_bytes(os.urandom(4), 'big')}"


def limit_line(output: str, name: str) -> list[str]:
    """The soft and hard values of one row of /proc/self/limits."""
    row = next(line for line in output.splitlines() if line.startswith(name))
    return row[len(name) :].split()[:2]


def assert_none_left(marker: str) -> None:
    wait_for(lambda: processes_with(marker) == [], f"no process with {marker} is left")


# --- limits -------------------------------------------------------------------------------------


async def test_fork_bomb_ends_and_leaves_nothing(scene: Scene) -> None:
    """:(){ :|:& };: with processes = 64."""
    scene.settings("[sandbox]\nprocesses = 64\n")
    marker = unique("bomb")
    result = await scene.run(f":(){{ :|:& }};: ; sleep 30 # {marker}", timeout=5)
    assert "Resource temporarily unavailable" in result.output  # the limit was reached
    assert_none_left(marker)
    assert subprocess.run(["true"], timeout=30).returncode == 0  # the host can still fork


async def test_default_process_limit_is_in_force(scene: Scene) -> None:
    """The command's own task limit, read inside: its cgroup's pids.max, or ulimit -u."""
    result = await scene.run(
        "for f in $(find /sys/fs/cgroup -maxdepth 4 -path '*/koda-*/cgroup.procs'); do "
        'grep -qx $$ "$f" && echo "pids.max=$(cat "${f%/*}/pids.max")"; done; '
        'echo "nproc=$(ulimit -u)"'
    )
    if cgroup.pids_parent() is not None:
        assert f"pids.max={Limits().processes}" in result.output
    else:
        assert "nproc=unlimited" not in result.output


async def test_output_flood_is_stopped_at_the_limit(scene: Scene) -> None:
    """yes, forever, with output_mb = 1."""
    scene.settings("[sandbox]\noutput_mb = 1\n")
    marker = unique("flood")
    result = await scene.run(f"yes {marker}", timeout=60)
    assert f"its output passed {MIB:,} bytes" in result.output
    assert not result.ok
    assert_none_left(marker)


async def test_default_output_limit_is_in_force(scene: Scene) -> None:
    """Print a little more than the default output limit."""
    limit = Limits().output_bytes
    # One long line rather than millions of short ones: the same bytes, read in fewer pieces.
    result = await scene.run(f"head -c {limit + MIB} /dev/zero | tr '\\0' y", timeout=120)
    assert f"its output passed {limit:,} bytes" in result.output


async def test_memory_bomb_is_stopped(scene: Scene) -> None:
    """Allocate 1 GiB with memory_mb = 256."""
    scene.settings("[sandbox]\nmemory_mb = 256\n")
    result = await scene.run(f"{PY} -c 'b = bytearray(1024 ** 3); print(\"allocated\")'")
    assert "MemoryError" in result.output
    assert "allocated" not in result.output


async def test_default_memory_limit_is_in_force(scene: Scene) -> None:
    """The address-space limit, read inside."""
    result = await scene.run("cat /proc/self/limits")
    expected = str(default_memory_limit())
    assert limit_line(result.output, "Max address space") == [expected, expected]


async def test_cpu_burn_is_killed(scene: Scene) -> None:
    """A busy loop with cpu_seconds = 1."""
    scene.settings("[sandbox]\ncpu_seconds = 1\n")
    result = await scene.run("while :; do :; done", timeout=100)
    # The sandbox reports a command killed by a signal as 128 + its number.
    assert f"Exit code: {128 + signal.SIGXCPU}" in result.output
    assert "timed out" not in result.output


async def test_default_cpu_limit_is_in_force(scene: Scene) -> None:
    """The CPU-time limit, read inside."""
    result = await scene.run("cat /proc/self/limits")
    seconds = Limits().cpu_seconds
    assert limit_line(result.output, "Max cpu time") == [str(seconds), str(seconds + 5)]


# --- nothing outlives the command ---------------------------------------------------------------


async def test_background_job_does_not_survive(scene: Scene) -> None:
    """sleep 300 &, then return."""
    sleep = long_sleep()
    await scene.run(f"{sleep} & echo started")
    assert_none_left(sleep)


async def test_nohup_job_does_not_survive(scene: Scene) -> None:
    """nohup sleep 300 &, immune to hangups."""
    sleep = long_sleep()
    await scene.run(f"nohup {sleep} > /dev/null 2>&1 & disown; echo started")
    assert_none_left(sleep)


async def test_setsid_job_does_not_survive(scene: Scene) -> None:
    """setsid sleep 300 &, in a session of its own."""
    sleep = long_sleep()
    await scene.run(f"setsid {sleep} < /dev/null > /dev/null 2>&1 & echo started")
    assert_none_left(sleep)


async def test_double_forked_daemon_does_not_survive(scene: Scene) -> None:
    """A daemon: fork, setsid, fork again, the parents exit, the grandchild lives on."""
    sleep = long_sleep()
    await scene.run(
        f"{PY} -c 'import os, sys\n"
        "if os.fork(): sys.exit()\n"
        "os.setsid()\n"
        "if os.fork(): sys.exit()\n"
        "os.closerange(0, 3)\n"
        f'os.execvp("sleep", {sleep.split()!r})\'; echo started'
    )
    assert_none_left(sleep)


# --- nothing outside can be reached --------------------------------------------------------------


async def test_killing_koda_from_inside_fails(
    scene: Scene, host_process: tuple[subprocess.Popen[bytes], str]
) -> None:
    """kill -9 of Koda's pid and of another host process."""
    proc, _ = host_process
    result = await scene.run(f"kill -9 {os.getpid()}; kill -9 {proc.pid}; echo sent")
    assert "sent" in result.output
    assert "No such process" in result.output
    assert proc.poll() is None
    os.kill(os.getpid(), 0)  # still here, and so is the test


async def test_pkill_from_inside_cannot_reach_host_processes(
    scene: Scene, host_process: tuple[subprocess.Popen[bytes], str]
) -> None:
    """pkill -f pytest, and pkill -f with a host process's own marker."""
    proc, marker = host_process
    # "${p}test": the shell's own command line must not hold "pytest", or pkill ends the shell.
    rest = marker.removeprefix("py")
    result = await scene.run(
        f'p=py; pkill -9 -f "${{p}}{rest}"; pkill -9 -f "${{p}}test"; echo sent'
    )
    assert "sent" in result.output
    assert proc.poll() is None


async def test_leaving_the_process_cgroup_is_refused(scene: Scene) -> None:
    """Move the shell into another cgroup (the root one), away from its process limit."""
    result = await scene.run(
        "for f in $(find /sys/fs/cgroup -maxdepth 2 -name cgroup.procs); do "
        'echo $$ > "$f" && echo "moved to $f"; done'
    )
    assert "moved to" not in result.output
    assert "Read-only file system" in result.output


# --- no privileges ------------------------------------------------------------------------------


async def test_no_new_privileges_is_set(scene: Scene) -> None:
    """Setuid programs cannot raise privileges: the no_new_privs flag, read inside."""
    result = await scene.run("grep NoNewPrivs /proc/self/status")
    assert "NoNewPrivs:\t1" in result.output


async def test_no_capabilities_inside(scene: Scene) -> None:
    """Even root inside holds no capability, in its set or its bounding set."""
    result = await scene.run("grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status")
    lines = [line.split() for line in result.output.splitlines() if line.startswith("Cap")]
    assert len(lines) == 4
    assert all(int(value, 16) == 0 for _, value in lines)


async def test_sudo_and_su_fail(scene: Scene) -> None:
    """sudo and su, to run something as root with every capability."""
    result = await scene.run(
        "sudo -n sh -c 'echo gained $(grep CapEff /proc/self/status)'; "
        "su -c 'echo gained $(grep CapEff /proc/self/status)' root; echo tried"
    )
    assert "tried" in result.output
    assert "gained" not in result.output


async def test_dev_tty_cannot_be_opened(scene: Scene) -> None:
    """Open /dev/tty, to type into the user's terminal or read from it."""
    result = await scene.run("exec 3<>/dev/tty && echo opened")
    assert "opened" not in result.output
    assert "No such device or address" in result.output
