"""The bubblewrap command line for a policy (Linux).

Mount order matters: later mounts cover earlier ones. The root goes in read-only, then the
writable places, then the write-protected ones inside them, then Koda's hidden folders; the
project is bound again last if it lies inside a hidden folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from koda.sandbox.policy import SandboxPolicy

STAGE2 = Path(__file__).with_name("stage2.py")
# Where the proxies' Unix sockets appear inside; /run is an empty tmpfs there.
EGRESS_DIR = "/run/koda-egress"

PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")

NAMESPACES = (
    "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
    "--die-with-parent", "--new-session",
)  # fmt: skip


def bwrap_argv(
    bwrap: str, policy: SandboxPolicy, cwd: Path, command: list[str], *, nproc: int | None
) -> list[str]:
    """The full argv: bwrap, its mounts, then stage2 (limits, proxy bridge), then `command`.

    `nproc`: an RLIMIT_NPROC to set, where no cgroup limits processes.
    """
    argv = [bwrap, *NAMESPACES, *_mounts(policy), "--chdir", str(cwd), "--"]
    stage2 = [sys.executable, "-I", "-S", str(STAGE2), *stage2_options(policy, nproc, bridge=True)]
    return [*argv, *stage2, "--", *command]


def _mounts(policy: SandboxPolicy) -> list[str]:
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # Kernel settings are global, not per namespace: root's uid 0 maps to the real root, and
    # bwrap leaves /proc/sys writable when it cannot check it, so it is made read-only here.
    for knob in PROC_READ_ONLY:
        args += ["--ro-bind-try", knob, knob]
    # /run holds daemons' sockets (docker, D-Bus, agents): reachable even through a read-only
    # mount, so it is replaced by an empty folder. /tmp is the session's own for the same reason.
    args += ["--tmpfs", "/run", "--bind", str(policy.tmp_dir), "/tmp"]
    for path in policy.runtime:
        args += ["--ro-bind", str(path), str(path)]
    for path in policy.writable:
        args += ["--bind", str(path), str(path)]
    args += ["--bind", str(policy.project_root), str(policy.project_root)]
    for path in policy.rename_proof:
        args += ["--bind", str(path), str(path)]
    for path in policy.write_protected:
        args += ["--ro-bind", str(path), str(path)]
    for path in policy.hidden:
        args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    if any(policy.project_root.is_relative_to(h) for h in policy.hidden):
        args += ["--bind", str(policy.project_root), str(policy.project_root)]
        for path in policy.write_protected:
            if path.is_relative_to(policy.project_root):
                args += ["--ro-bind", str(path), str(path)]
    if policy.network is not None:
        net = policy.network
        args += ["--dir", EGRESS_DIR]
        for sock in (net.http_socket, net.socks_socket):
            args += ["--bind", str(sock), f"{EGRESS_DIR}/{sock.name}"]
    return args


def stage2_options(policy: SandboxPolicy, nproc: int | None, *, bridge: bool) -> list[str]:
    """stage2's limits, and with `bridge` its forwarding of loopback ports to the proxies."""
    limits = policy.limits
    options = [
        "--limit", f"cpu={limits.cpu_seconds}",
        "--limit", f"as={limits.memory_bytes}",
        "--limit", f"nofile={limits.open_files}",
        "--limit", "core=0",
    ]  # fmt: skip
    if nproc is not None:
        options += ["--limit", f"nproc={nproc}"]
    if bridge and policy.network is not None:
        net = policy.network
        options += ["--bridge", f"{net.http_port}={EGRESS_DIR}/{net.http_socket.name}"]
        options += ["--bridge", f"{net.socks_port}={EGRESS_DIR}/{net.socks_socket.name}"]
    return options
