"""Whether commands can run in the kernel sandbox here, and how to fix it when they cannot."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass

# The namespaces and hardening the real launcher uses; the probe must need what it needs.
PROBE_FLAGS = (
    "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
    "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
)  # fmt: skip
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class SandboxStatus:
    available: bool
    backend: str  # "bwrap", "seatbelt" or "none"
    detail: str  # the version in use, or why it cannot be used
    fix: str = ""  # what to do about it; empty when available


def bubblewrap_fix() -> str:
    if shutil.which("apt-get"):
        return "install bubblewrap: sudo apt-get install bubblewrap"
    if shutil.which("dnf"):
        return "install bubblewrap: sudo dnf install bubblewrap"
    if shutil.which("pacman"):
        return "install bubblewrap: sudo pacman -S bubblewrap"
    return "install bubblewrap (the package is called bubblewrap on most distributions)"


@functools.cache
def sandbox_status() -> SandboxStatus:
    """Probed once per process: a real `bwrap … true` with the launcher's flags (about 10 ms
    and a subprocess, so front ends start it early, in a thread, alongside their own setup)."""
    if sys.platform == "darwin":
        found = shutil.which("sandbox-exec")
        if found:
            return SandboxStatus(True, "seatbelt", "sandbox-exec")
        return SandboxStatus(False, "none", "sandbox-exec is missing", "it ships with macOS")
    if not sys.platform.startswith("linux"):
        return SandboxStatus(False, "none", f"no sandbox for {sys.platform}", "use Linux or macOS")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxStatus(False, "none", "bubblewrap (bwrap) is not installed", bubblewrap_fix())
    return _probe(bwrap)


def bwrap_version() -> str:
    """`bubblewrap 0.8.0`, or empty where bwrap is missing or says nothing."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ""
    try:
        done = subprocess.run(
            [bwrap, "--version"], capture_output=True, timeout=PROBE_TIMEOUT, text=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def _probe(bwrap: str) -> SandboxStatus:
    try:
        run = subprocess.run(
            [bwrap, *PROBE_FLAGS, "true"], capture_output=True, timeout=PROBE_TIMEOUT, text=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return SandboxStatus(False, "none", f"bwrap could not run: {exc}", bubblewrap_fix())
    if run.returncode != 0:
        reason = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "no reason given"
        return SandboxStatus(
            False,
            "none",
            f"bwrap cannot create namespaces here ({reason})",
            "allow unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04+ "
            "kernel.apparmor_restrict_unprivileged_userns=0), or update bubblewrap to 0.8+",
        )
    return SandboxStatus(True, "bwrap", "bubblewrap")
