"""A trivial command in the sandbox against the same command without it.

Three ways to run `true` from a temp project, interleaved round by round after a warm-up:

- plain: `bash -c true` with the reduced environment, as Koda runs commands without a sandbox;
- sandbox: what the session's launcher starts in Auto mode: a pids cgroup where one can be
  made, bubblewrap with the policy's mounts and namespaces, then stage2 (limits, and the bridge
  to the session's egress proxies) and finally `bash -c true`;
- sandbox, no network: the same policy without proxies (stage2 only sets limits and execs).

Each is a subprocess timed from spawn to exit. The figures are the medians and what the
sandbox adds to the plain run's median. The Bash tool's own cost around the command (pipes,
supervision) is the same either way, so it is measured once, for information, in process.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import _bench as b

b.ensure_importable()

from koda.cancel import CancelToken  # noqa: E402
from koda.paths import koda_dirs  # noqa: E402
from koda.sandbox import cgroup  # noqa: E402
from koda.sandbox.bwrap import bwrap_argv  # noqa: E402
from koda.sandbox.launcher import CommandLauncher  # noqa: E402
from koda.sandbox.policy import SandboxPolicy  # noqa: E402
from koda.sandbox.status import sandbox_status  # noqa: E402
from koda.tools.base import ToolContext  # noqa: E402
from koda.tools.bash import Bash  # noqa: E402


class _NoTracker:
    def record_created(self, path: Path) -> None: ...
    def is_owned(self, path: Path) -> bool:
        return False

    def record_read(self, path: Path, digest: str) -> None: ...
    def read_digest(self, path: Path) -> str | None:
        return None


def main() -> None:
    p = b.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args()
    status = sandbox_status()
    if not status.available:
        raise SystemExit(f"no sandbox here: {status.detail} ({status.fix})")
    result = b.Result("sandbox", b.command(__file__, *(["--json"] if args.json else [])))
    with tempfile.TemporaryDirectory(prefix="koda-bench-") as tmp:
        project = Path(tmp)
        launcher = CommandLauncher(project, status, koda_dirs=koda_dirs())
        try:
            measure(result, launcher, project, args.runs)
            tool_cost(result, launcher, project, args.runs)
        finally:
            launcher.close()
    b.emit(result, args.json)


def measure(result: b.Result, launcher: CommandLauncher, project: Path, runs: int) -> None:
    bash = shutil.which("bash") or "/bin/sh"
    plain = launcher.launch(bash, "true", project)
    plain_argv = [bash, "-c", "true"]
    offline = replace(launcher.policy(), network=None)
    times: dict[str, list[float]] = {"plain": [], "sandbox": [], "offline": []}
    for round_ in range(runs + 1):
        samples = {
            "plain": b.time_run(plain_argv, env=plain.env, cwd=project),
            "sandbox": _sandboxed(launcher, bash, project),
            "offline": _offline(offline, bash, project, plain.env),
        }
        if round_:  # the first round warms caches
            for name, ms in samples.items():
                times[name].append(ms)
    base = b.median(times["plain"])
    result.add("plain `bash -c true`", base, note=f"n={runs}, {b.spread(times['plain'])}")
    for name, label in (("sandbox", "sandboxed"), ("offline", "sandboxed, no proxies")):
        median = b.median(times[name])
        result.add(f"{label} `bash -c true`", median, note=f"n={runs}, {b.spread(times[name])}")
        result.add(f"added by the sandbox ({label})", median - base, note="median − plain median")
    result.details["times_ms"] = times


def _sandboxed(launcher: CommandLauncher, bash: str, project: Path) -> float:
    launch = launcher.launch(bash, "true", project)
    try:
        return b.time_run(launch.argv, env=launch.env, cwd=project)
    finally:
        launch.cleanup()


def _offline(policy: SandboxPolicy, bash: str, project: Path, env: dict[str, str] | None) -> float:
    group = cgroup.create(policy.limits.processes)
    bwrap = shutil.which("bwrap") or "bwrap"
    argv = bwrap_argv(bwrap, policy, project, [bash, "-c", "true"], nproc=None)
    if group is not None:
        argv = cgroup.wrap(group, argv)
    try:
        return b.time_run(argv, env=env, cwd=project)
    finally:
        if group is not None:
            cgroup.remove(group)


def tool_cost(result: b.Result, launcher: CommandLauncher, project: Path, runs: int) -> None:
    """The Bash tool end to end (spawn, pipes, supervision), with and without the sandbox."""

    async def once(with_sandbox: bool) -> float:
        ctx = ToolContext(project, CancelToken(), _NoTracker(),
                          launcher=launcher if with_sandbox else None)  # fmt: skip
        start = time.perf_counter()
        out = await Bash().run(ctx, {"command": "true"})
        if not out.ok:
            raise SystemExit(f"Bash failed: {out.output}")
        return (time.perf_counter() - start) * 1000

    async def rounds() -> tuple[list[float], list[float]]:
        plain, boxed = [], []
        for round_ in range(runs + 1):
            a, s = await once(False), await once(True)
            if round_:
                plain.append(a)
                boxed.append(s)
        return plain, boxed

    plain, boxed = asyncio.run(rounds())
    result.add("Bash tool, `true`, no sandbox", b.median(plain), note=f"n={runs}")
    result.add("Bash tool, `true`, sandboxed", b.median(boxed), note=f"n={runs}")


if __name__ == "__main__":
    main()
