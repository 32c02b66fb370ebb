"""The sandbox-exec (Seatbelt) profile for a policy (macOS).

In SBPL the last rule that matches an operation decides, so the profile goes from broad to
narrow: everything denied; what every process needs; reads everywhere; writes to the project,
the session's temp folder and the tool caches; then the write-protected and hidden paths taken
back; then the network, denied but for TCP to the session's proxies on this machine.

macOS names many paths through links (/tmp is /private/tmp, /var is /private/var) and the
kernel checks the resolved name, so every path is written both as given and resolved.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from koda.sandbox.bwrap import STAGE2, stage2_options
from koda.sandbox.policy import Network, SandboxPolicy

SANDBOX_EXEC = "/usr/bin/sandbox-exec"

BASE = """\
(version 1)
(deny default)

; Programs start programs, and look after the ones they started.
(allow process-fork)
(allow process-exec)
(allow signal (target same-sandbox))
(allow process-info* (target same-sandbox))

; What libc and language runtimes ask of the system as they start.
(allow sysctl-read)
(allow user-preference-read)
(allow ipc-posix-shm)
(allow ipc-posix-sem)
(allow mach-lookup
  (global-name "com.apple.system.opendirectoryd.libinfo")
  (global-name "com.apple.system.opendirectoryd.membership")
  (global-name "com.apple.system.notification_center")
  (global-name "com.apple.system.logger")
  (global-name "com.apple.logd")
  (global-name "com.apple.bsd.dirhelper"))

; Terminals a command opens for its own children.
(allow pseudo-tty)
(allow file-read* file-write* file-ioctl
  (literal "/dev/ptmx")
  (regex #"^/dev/ttys[0-9]+$"))

; Reads: everywhere, but for the hidden paths taken back below.
(allow file-read*)

; The device files every program writes to.
(allow file-write* file-ioctl
  (literal "/dev/null")
  (literal "/dev/zero")
  (literal "/dev/tty")
  (literal "/dev/stdout")
  (literal "/dev/stderr")
  (literal "/dev/random")
  (literal "/dev/urandom")
  (literal "/dev/dtracehelper")
  (subpath "/dev/fd"))
"""

# Certificate checks for TLS, which goes end to end through the proxies' tunnels.
TLS_SERVICES = ("com.apple.SecurityServer", "com.apple.trustd.agent", "com.apple.ocspd")


def seatbelt_argv(policy: SandboxPolicy, command: list[str]) -> list[str]:
    """sandbox-exec with the policy's profile, then stage2 (it only sets the limits here)."""
    stage2 = [sys.executable, "-I", "-S", str(STAGE2), *stage2_options(policy, None, bridge=False)]
    return [SANDBOX_EXEC, "-p", seatbelt_profile(policy), *stage2, "--", *command]


def seatbelt_profile(policy: SandboxPolicy) -> str:
    root = policy.project_root
    writable = [root, policy.tmp_dir, *policy.writable]
    sections = [
        BASE,
        _rule(
            "; Writes: the project, the session's temp folder and the tool caches.",
            "allow file-write*",
            _subpaths(writable),
        ),
        _rule(
            "; Credentials, git's config and hooks, Koda's settings: readable, never changed.",
            "deny file-write*",
            _subpaths(policy.write_protected),
        ),
        _rule(
            "; Nor moved aside with a folder above them, changed, and moved back.",
            "deny file-write-unlink",
            _literals(_ancestors([*policy.write_protected, *policy.hidden])),
        ),
        _rule(
            "; Koda's own data: neither read nor written.",
            "deny file-read* file-write*",
            _subpaths(policy.hidden),
        ),
    ]
    if any(root.is_relative_to(hidden) for hidden in policy.hidden):
        inner = [p for p in policy.write_protected if p.is_relative_to(root)]
        sections += [
            _rule(
                "; The project lies in a hidden folder: it is the exception.",
                "allow file-read* file-write*",
                _subpaths([root]),
            ),
            _rule("", "deny file-write*", _subpaths(inner)),
        ]
    sections.append(_network(policy.network))
    return "\n".join(section for section in sections if section)


def _network(network: Network | None) -> str:
    lines = [
        "; Network: none, but TCP to the session's proxies on this machine.",
        "(deny network*)",
    ]
    if network is None:
        return "\n".join(lines) + "\n"
    for port in dict.fromkeys((network.http_port, network.socks_port)):
        lines.append(f'(allow network-outbound (remote tcp "localhost:{port}"))')
    services = [f"(global-name {sbpl_string(name)})" for name in TLS_SERVICES]
    lines.append(_rule("", "allow mach-lookup", services))
    return "\n".join(lines)


def sbpl_string(text: str) -> str:
    """`text` as an SBPL string literal: backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rule(comment: str, head: str, filters: list[str]) -> str:
    """One rule over `filters`, or nothing at all: a rule without a filter matches everything."""
    if not filters:
        return ""
    body = "".join(f"\n  {f}" for f in filters)
    return f"{comment}\n({head}{body})\n" if comment else f"({head}{body})\n"


def _subpaths(paths: Iterable[Path]) -> list[str]:
    return [f"(subpath {sbpl_string(s)})" for s in _spellings(paths)]


def _literals(paths: Iterable[Path]) -> list[str]:
    return [f"(literal {sbpl_string(s)})" for s in _spellings(paths)]


def _spellings(paths: Iterable[Path]) -> list[str]:
    """Each path as given and resolved, once each, in order."""
    found: dict[str, None] = {}
    for path in paths:
        found.setdefault(str(path), None)
        found.setdefault(os.path.realpath(path), None)
    return list(found)


def _ancestors(paths: Iterable[Path]) -> list[Path]:
    """The folders above each path, resolved too: renaming one would carry the path along."""
    found: dict[Path, None] = {}
    for path in paths:
        for spelling in (path, Path(os.path.realpath(path))):
            for parent in spelling.parents:
                if parent != Path(parent.anchor):
                    found.setdefault(parent, None)
    return list(found)
