"""A process limit that holds for root too: a pids cgroup per command, where one can be made.

RLIMIT_NPROC does not bind uid 0 (the kernel exempts it), and a fork bomb as root would take
the machine's whole pid space. Where Koda may create cgroups (root, or a delegated subtree),
each sandboxed command gets its own with `pids.max`; elsewhere the launcher falls back to
RLIMIT_NPROC, which does bind ordinary users.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count(1)
_busy: list[Path] = []  # removal waits until their last task has gone


@functools.cache
def pids_parent() -> Path | None:
    """The writable pids-controller directory new cgroups go under, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):  # cgroup v1
            candidate = ROOT / "pids" / path.lstrip("/")
            if _usable(candidate):
                return candidate
        if number == "0" and controllers == "":  # cgroup v2
            for base in (ROOT, ROOT / "unified"):
                candidate = base / path.lstrip("/")
                if _has_pids_for_children(candidate) and _usable(candidate):
                    return candidate
    return None


def _usable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK)


def _has_pids_for_children(directory: Path) -> bool:
    try:
        return "pids" in (directory / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False


def create(limit: int) -> Path | None:
    """A new cgroup allowing `limit` tasks; None where none can be made."""
    parent = pids_parent()
    if parent is None:
        return None
    _remove_stale(parent)
    for old in list(_busy):
        remove(old)
    group = parent / f"koda-{os.getpid()}-{next(_counter)}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(limit))
    except OSError:
        remove(group)
        return None
    return group


def remove(group: Path) -> None:
    """Remove the cgroup; one whose tasks are still exiting is tried again later."""
    try:
        group.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        if group not in _busy:
            _busy.append(group)
        return
    if group in _busy:
        _busy.remove(group)


def _remove_stale(parent: Path) -> None:
    """Cgroups left by Koda processes that died before removing theirs."""
    entries: list[Path] = []
    with contextlib.suppress(OSError):
        entries = list(parent.glob("koda-*-*"))
    for entry in entries:
        pid = entry.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                entry.rmdir()


def wrap(group: Path, argv: list[str]) -> list[str]:
    """`argv`, started inside `group`: a shell joins it, then execs."""
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"), *argv]
