"""Helpers for undo tests: whole-tree snapshots and git in the user's repository."""

from __future__ import annotations

import subprocess
from pathlib import Path


def files(root: Path) -> dict[str, bytes]:
    """Every file under root (outside .git) with its bytes, to compare whole trees."""
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_symlink():
            found[rel] = b"-> " + str(path.readlink()).encode()
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout
