"""What a sandboxed command may see, write and use: one policy for every backend.

Reads are allowed almost everywhere (tools need the system); writes only to the project, the
session's /tmp and tool caches; credentials stay write-protected, Koda's own data unreadable.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Credentials under $HOME that commands may read (a tool may need them) but never change.
HOME_CREDENTIAL_DIRS = (
    ".ssh", ".aws", ".gnupg", ".kube", ".azure", ".password-store", ".terraform.d", ".claude",
    ".android", ".docker",
)  # fmt: skip
CONFIG_CREDENTIAL_DIRS = (
    "gcloud", "gh", "op", "helm", "netlify", "vercel", "fly", "doppler", "stripe", "heroku",
)  # fmt: skip
HOME_CREDENTIAL_FILES = (
    ".netrc", ".git-credentials", ".npmrc", ".pypirc", ".vault-token", ".env",
)  # fmt: skip
# Download caches builds need to write. Not ~/.cargo/bin or ~/.cargo/config.toml: a file
# planted there would run outside the sandbox the next time the user builds.
HOME_CACHES = (
    ".cache", ".npm", ".cargo/registry", ".cargo/git", "go/pkg/mod", ".m2/repository",
    ".gradle/caches",
)  # fmt: skip

# Daemons that act for the user listen on Unix sockets, and a read-only mount does not stop a
# connect(): these are covered so that no command can reach them. /run (where most live) and /tmp
# are replaced inside the sandbox anyway; these are the usual ones elsewhere.
HOME_SOCKETS = (
    ".docker/run/docker.sock", ".docker/desktop/docker.sock", ".colima/default/docker.sock",
    ".rd/docker.sock", ".1password/agent.sock", ".gnupg/S.gpg-agent", ".gnupg/S.gpg-agent.ssh",
    ".gnupg/S.gpg-agent.extra", ".gnupg/S.gpg-agent.browser",
)  # fmt: skip

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 600
    memory_bytes: int = 8 * GIB
    processes: int = 1024  # tasks (threads count too) in the command's tree
    output_bytes: int = 64 * MIB  # a foreground command printing more is stopped
    open_files: int = 4096


def limits_from(
    *,
    memory_mb: int | None = None,
    cpu_seconds: int | None = None,
    processes: int | None = None,
    output_mb: int | None = None,
) -> Limits:
    """Defaults, with whatever the user's settings say instead."""
    base = Limits(memory_bytes=default_memory_limit())
    return Limits(
        cpu_seconds=cpu_seconds or base.cpu_seconds,
        memory_bytes=memory_mb * MIB if memory_mb else base.memory_bytes,
        processes=processes or base.processes,
        output_bytes=output_mb * MIB if output_mb else base.output_bytes,
    )


@dataclass(frozen=True)
class Network:
    """The session's proxies as the sandbox reaches them: a loopback port inside the sandbox's
    network namespace is bridged to each proxy's Unix socket."""

    http_port: int
    socks_port: int
    http_socket: Path
    socks_socket: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxPolicy:
    project_root: Path
    tmp_dir: Path  # the session's own folder, seen as /tmp inside
    writable: tuple[Path, ...]  # besides the project and /tmp
    write_protected: tuple[Path, ...]  # readable, never writable (existing paths only)
    hidden: tuple[Path, ...]  # neither readable nor writable
    # Writable, but a mount point, so it cannot be renamed and replaced (the project's .git)
    rename_proof: tuple[Path, ...] = ()
    # Koda's own Python and code where the sandbox would not show them (installed under /tmp,
    # which is the session's own inside): seen read-only, so stage2 can run
    runtime: tuple[Path, ...] = ()
    limits: Limits = Limits()
    network: Network | None = None  # None: no network at all


def default_memory_limit() -> int:
    """Half the machine's memory, at least 2 GiB: one runaway command can't take all of it."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GIB
    return max(2 * GIB, total // 2)


def build_policy(
    project_root: Path,
    tmp_dir: Path,
    *,
    koda_dirs: Iterable[Path],
    home: Path | None = None,
    extra_writable: Iterable[Path] = (),
    limits: Limits | None = None,
    network: Network | None = None,
    env: Mapping[str, str] | None = None,
) -> SandboxPolicy:
    """The policy for one session. `koda_dirs`: Koda's data and config folders, to hide;
    `env`: Koda's own environment (where it says agent sockets are)."""
    home = home if home is not None else Path.home()
    env = os.environ if env is None else env
    root = project_root.resolve()
    writable = _existing([*(home / c for c in HOME_CACHES), *extra_writable])
    credentials = credential_paths(home)
    _make_missing_in_project(credentials, root)
    git = root / ".git"
    return SandboxPolicy(
        project_root=root,
        tmp_dir=tmp_dir,
        writable=writable,
        write_protected=_existing([*credentials, *project_protected(root)]),
        rename_proof=_existing([git, git / "modules"]) if _is_git_dir(git) else (),
        runtime=runtime_under_tmp(root),
        hidden=_existing([*koda_dirs, *daemon_sockets(home, env)]),
        limits=limits or Limits(memory_bytes=default_memory_limit()),
        network=network,
    )


def credential_paths(home: Path) -> list[Path]:
    return [
        *(home / d for d in HOME_CREDENTIAL_DIRS),
        *(home / ".config" / d for d in CONFIG_CREDENTIAL_DIRS),
        *(home / f for f in HOME_CREDENTIAL_FILES),
    ]


def runtime_under_tmp(root: Path) -> tuple[Path, ...]:
    """The interpreter and Koda's package, where they lie under /tmp (hidden by the session's
    own /tmp) and outside the project (which is mounted anyway, and writable)."""
    tmp = Path("/tmp").resolve()
    here = Path(__file__).resolve().parent.parent  # the koda package
    python = Path(os.path.realpath(sys.executable)).parent
    candidates = [Path(sys.prefix), Path(sys.base_prefix), python, here]
    return _existing(
        p
        for p in candidates
        if p.resolve().is_relative_to(tmp) and not p.resolve().is_relative_to(root)
    )


def credentials_under(folder: Path, home: Path) -> list[Path]:
    """The credential places (existing or not) inside `folder`: a writable folder holding one
    would let a command create, say, ~/.ssh/authorized_keys where none exists yet."""
    return [c for c in credential_paths(home) if c.is_relative_to(folder)]


def daemon_sockets(home: Path, env: Mapping[str, str]) -> list[Path]:
    """Unix sockets of agents and daemons that would act for the user outside the sandbox."""
    found = [home / s for s in HOME_SOCKETS]
    if env.get("SSH_AUTH_SOCK", "").startswith("/"):
        found.append(Path(env["SSH_AUTH_SOCK"]))
    if env.get("DOCKER_HOST", "").startswith("unix:///"):
        found.append(Path(env["DOCKER_HOST"].removeprefix("unix://")))
    var_run = Path("/var/run")
    if var_run.is_dir() and not var_run.is_symlink():  # usually a link to /run
        found.append(var_run)
    return found


def project_protected(root: Path) -> list[Path]:
    """Files in the project that would run code or widen trust outside the sandbox later:
    git's config and hooks (run by the user's next git command) and Koda's own settings.

    Created empty when missing, so a command cannot create them either: a mount needs a place.
    """
    paths = [root / ".koda"]
    git = root / ".git"
    if _is_git_dir(git):
        paths += [git / "config", git / "hooks"]
        # Submodules' own git folders: their settings and hooks run for the user too.
        for module in sorted(git.glob("modules/*/")):
            paths += [module / "config", module / "hooks"]
    for path in paths:
        if path.name != "config" and not path.exists() and not path.is_symlink():
            # Where it cannot be made (a read-only project), no command can make it either.
            with contextlib.suppress(OSError):
                path.mkdir()
    return paths


def _is_git_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _make_missing_in_project(credentials: list[Path], root: Path) -> None:
    """With HOME inside the project (Koda started in the home folder), a command could create
    ~/.ssh/authorized_keys where there is none: missing credential places are made, empty and
    private, so that they are protected like the others."""
    for path in credentials:
        if not path.is_relative_to(root) or path.exists() or path.is_symlink():
            continue
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.name in HOME_CREDENTIAL_FILES:
                path.touch(mode=0o600)
            else:
                path.mkdir(mode=0o700)


def _existing(paths: Iterable[Path]) -> tuple[Path, ...]:
    seen: dict[Path, None] = {}
    for path in paths:
        try:
            if path.exists():  # follows links: the target is what gets mounted
                seen.setdefault(path.resolve(), None)
        except OSError:
            continue
    return tuple(seen)
