"""How a session's commands start: inside the sandbox where it works, always with a reduced
environment and the session's egress proxies.

Nothing happens until the first command: the session's folder (its /tmp and the proxies'
sockets) and the proxies themselves are made then, and removed by close().
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from koda.sandbox import cgroup
from koda.sandbox.bwrap import bwrap_argv
from koda.sandbox.env import command_env
from koda.sandbox.policy import Limits, Network, SandboxPolicy, build_policy
from koda.sandbox.seatbelt import seatbelt_argv
from koda.sandbox.status import SandboxStatus

if TYPE_CHECKING:
    from koda.sandbox.proxy import EgressProxies, Refusal

FOLDER_PREFIX = "koda-session-"


@dataclass
class Launch:
    """One command ready to start: its argv and environment, and what to undo afterwards."""

    argv: list[str]
    env: dict[str, str] | None  # None: Koda's own
    sandboxed: bool
    output_limit: int | None = None
    notice: str | None = None  # something the model should know, said once per session
    cgroup: Path | None = field(default=None, repr=False)
    # Hosts the egress proxies refused since this launch (the model sees only a failed
    # connection otherwise, and would guess at the cause).
    refused: Callable[[], list[Refusal]] = field(default=lambda: [], repr=False)

    # Files a command must not leave behind (a new .git/commondir would point the user's git at
    # settings the command wrote); found after the command, they are removed again.
    undo_new: tuple[Path, ...] = ()
    removed: list[Path] = field(default_factory=list)

    def notes(self) -> list[str]:
        """What the model should hear about besides the command's own output."""
        notes = [n for n in (self.egress_note(), self.notice) if n]
        if self.removed:
            names = ", ".join(str(p) for p in self.removed)
            notes.append(f"[koda removed {names}: git's settings are protected in the sandbox]")
        return notes

    def egress_note(self) -> str | None:
        reasons: dict[str, list[str]] = {}
        for refusal in self.refused():
            hosts = reasons.setdefault(refusal.reason, [])
            if refusal.host not in hosts:
                hosts.append(refusal.host)
        if not reasons:
            return None
        said = "; ".join(f"{', '.join(hosts)}: {why}" for why, hosts in reasons.items())
        return (
            f"[the egress proxy refused {said}. Commands reach code hosts and package registries "
            "only; the user can allow more hosts under [network] allow in koda.toml]"
        )

    def cleanup(self) -> None:
        if self.cgroup is not None:
            cgroup.remove(self.cgroup)
        for path in self.undo_new:
            with contextlib.suppress(OSError):
                if path.is_symlink() or path.exists():
                    path.unlink()
                    self.removed.append(path)


class CommandLauncher:
    def __init__(
        self,
        project_root: Path,
        status: SandboxStatus,
        *,
        koda_dirs: Iterable[Path],
        network_allow: Iterable[str] = (),
        limits: Limits | None = None,
        extra_writable: Iterable[Path] = (),
        parent_env: Mapping[str, str] | None = None,
    ) -> None:
        self.project_root = project_root
        self.status = status
        self._koda_dirs = tuple(koda_dirs)
        self._network_allow = tuple(network_allow)
        self._limits = limits
        self._extra_writable = tuple(extra_writable)
        self._parent_env = parent_env
        self._folder: Path | None = None
        self._proxies: EgressProxies | None = None
        self._network: Network | None = None
        self._notices: list[str] = []

    @property
    def sandboxed(self) -> bool:
        return self.status.available

    def launch(self, shell: str, command: str, cwd: Path) -> Launch:
        """How to run `shell -c command` in `cwd` under this session's rules."""
        self._start()
        parent = os.environ if self._parent_env is None else self._parent_env
        proxy_env = self._network.env if self._network is not None else {}
        env = command_env(parent, proxy_env, sandboxed=self.sandboxed)
        notice = "\n".join(self._notices) or None
        self._notices.clear()
        launch = self._launch([shell, "-c", command], env, cwd)
        launch.notice = notice
        proxies = self._proxies
        if proxies is not None:
            mark = proxies.refusal_count
            launch.refused = lambda: proxies.refusals_since(mark)
        return launch

    def refusals(self) -> list[Refusal]:
        """What the session's egress proxies refused so far (the latest ones)."""
        return self._proxies.refusals if self._proxies is not None else []

    def _launch(self, argv: list[str], env: dict[str, str], cwd: Path) -> Launch:
        if not self.sandboxed:
            return Launch(argv, env, False)
        policy = self.policy()
        if self.status.backend == "seatbelt":
            # No remount on macOS: the session's temp folder is where TMPDIR points.
            env.update(dict.fromkeys(("TMPDIR", "TMP", "TEMP"), str(policy.tmp_dir)))
            return Launch(seatbelt_argv(policy, argv), env, True, policy.limits.output_bytes)
        group = cgroup.create(policy.limits.processes)
        nproc = None if group is not None or os.getuid() == 0 else _nproc(policy.limits.processes)
        argv = bwrap_argv(shutil.which("bwrap") or "bwrap", policy, cwd, argv, nproc=nproc)
        if group is not None:
            argv = cgroup.wrap(group, argv)
        commondir = policy.project_root / ".git" / "commondir"
        undo = () if commondir.exists() or commondir.is_symlink() else (commondir,)
        return Launch(argv, env, True, policy.limits.output_bytes, cgroup=group, undo_new=undo)

    def policy(self) -> SandboxPolicy:
        self._start()
        assert self._folder is not None  # made by _start
        return build_policy(
            self.project_root,
            self._folder / "tmp",
            koda_dirs=self._koda_dirs,
            extra_writable=self._extra_writable,
            limits=self._limits,
            network=self._network,
            env=os.environ if self._parent_env is None else self._parent_env,
        )

    def close(self) -> None:
        """Stop the proxies and remove the session's folder (its /tmp goes with it)."""
        atexit.unregister(self.close)
        if self._proxies is not None:
            self._proxies.stop()
            self._proxies = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _start(self) -> None:
        if self._folder is not None:
            return
        _remove_stale_folders()
        self._folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        (self._folder / "tmp").mkdir(mode=0o700)
        # A session that is never closed (a crash in the front end) still cleans up.
        atexit.register(self.close)
        self._start_proxies(self._folder / "egress")

    def _start_proxies(self, sockets: Path) -> None:
        from koda.sandbox.allowlist import Allowlist
        from koda.sandbox.proxy import EgressProxies, ProxyStartError, upstream_from_env

        sockets.mkdir(mode=0o700)
        parent = os.environ if self._parent_env is None else self._parent_env
        proxies = EgressProxies(
            Allowlist.default(self._network_allow),
            socket_dir=sockets,
            upstream=upstream_from_env(parent),
        )
        try:
            proxies.start()
        except ProxyStartError as exc:
            effect = "commands have no network" if self.sandboxed else "network is not filtered"
            self._notices.append(f"[koda: the egress proxy could not start ({exc}); {effect}]")
            return
        assert proxies.http_socket is not None and proxies.socks_socket is not None
        self._proxies = proxies
        self._network = Network(
            proxies.http_port,
            proxies.socks_port,
            proxies.http_socket,
            proxies.socks_socket,
            proxies.env(),
        )


def _remove_stale_folders() -> None:
    """Folders of sessions whose Koda process died without cleaning up (killed, crashed)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _nproc(limit: int) -> int:
    """RLIMIT_NPROC counts all of the user's tasks, so the budget goes on top of those."""
    uid = os.getuid()
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry.name}/task"))
    return count + limit
