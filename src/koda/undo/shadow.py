"""A git repository of Koda's own that tracks the project's files, apart from the user's git.

Every command runs as `git --git-dir=<shadow> --work-tree=<project>` with the user's git
settings and GIT_* variables kept out, so the project's own .git is never read or written and
nothing in the user's config (hooks, signing, filters, line-ending rules) changes what is stored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

GIT_TIMEOUT_S = 120
LOCK_TIMEOUT_S = 30
# Regenerable and often huge; build/, dist/ and target/ are left to the project's .gitignore
# because some projects keep sources under those names.
ALWAYS_SKIPPED = (
    ".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
    ".ruff_cache", ".tox", ".nox", ".next", ".cache", ".gradle",
)  # fmt: skip
# The highest-precedence attributes: store and restore bytes exactly as they are, whatever the
# project's .gitattributes says about line endings, encodings, filters (LFS) or keywords.
_ATTRIBUTES = "* -text -eol -filter -ident -working-tree-encoding -diff -merge\n"
_SETTINGS = (
    "core.autocrlf=false",
    "core.safecrlf=false",
    "core.fsmonitor=false",
    "core.quotepath=false",
    "core.symlinks=true",
    "commit.gpgsign=false",
    "gc.auto=0",
)


class GitMissingError(Exception):
    """git is not installed; checkpoints cannot be kept."""


class GitError(Exception):
    """A git command failed; the message carries git's own words."""


class ShadowRepo:
    def __init__(self, git_dir: Path, work_tree: Path) -> None:
        self.git_dir = git_dir
        self.work_tree = work_tree

    def exists(self) -> bool:
        return (self.git_dir / "HEAD").is_file()

    def git(self, *args: str, stdin: bytes | None = None) -> str:
        """Run one git command on the shadow repository and the project's files; its standard
        output, decoded as file names are."""
        return self._run(
            [f"--git-dir={self.git_dir}", f"--work-tree={self.work_tree}"], args, stdin
        )

    def _run(self, where: list[str], args: tuple[str, ...], stdin: bytes | None) -> str:
        exe = shutil.which("git")
        if exe is None:
            raise GitMissingError("git is not installed, so Koda cannot keep undo checkpoints")
        argv = [exe, *where]
        for setting in _SETTINGS:
            argv += ["-c", setting]
        # A folder that does not exist: no hook of any kind ever runs.
        argv += ["-c", f"core.hooksPath={self.git_dir / 'no-hooks'}", *args]
        try:
            done = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                cwd=self.work_tree if self.work_tree.is_dir() else None,
                env=self._env(),
                timeout=GIT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from None
        except OSError as exc:
            raise GitError(f"git {args[0]} could not run: {exc}") from None
        if done.returncode != 0:
            detail = os.fsdecode(done.stderr).strip().splitlines()
            raise GitError(f"git {args[0]} failed: {detail[-1] if detail else done.returncode}")
        return os.fsdecode(done.stdout)

    def ensure(self, extra_excludes: list[str]) -> None:
        """Create the repository on first use; keep its exclude list current."""
        if not self.exists():
            self.git_dir.parent.mkdir(parents=True, exist_ok=True)
            self._run([], ("init", "--quiet", "--bare", str(self.git_dir)), None)
            (self.git_dir / "koda-project").write_text(f"{self.work_tree}\n", encoding="utf-8")
        info = self.git_dir / "info"
        info.mkdir(exist_ok=True)
        _write_if_changed(info / "attributes", _ATTRIBUTES)
        lines = [f"{name}/" for name in ALWAYS_SKIPPED]
        _write_if_changed(info / "exclude", "\n".join([*lines, *extra_excludes]) + "\n")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One Koda at a time per project: sessions and `koda undo` share the repository."""
        self.git_dir.mkdir(parents=True, exist_ok=True)
        with (self.git_dir.parent / f"{self.git_dir.name}.lock").open("a") as handle:
            _lock(handle.fileno())
            try:
                # Holding the lock, a leftover index.lock can only be from a git that died.
                with contextlib.suppress(FileNotFoundError):
                    (self.git_dir / "index.lock").unlink()
                yield
            finally:
                _unlock(handle.fileno())

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            GIT_AUTHOR_NAME="Koda",
            GIT_AUTHOR_EMAIL="koda@localhost",
            GIT_COMMITTER_NAME="Koda",
            GIT_COMMITTER_EMAIL="koda@localhost",
            GIT_TERMINAL_PROMPT="0",
            LC_ALL="C",
        )
        return env


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    path.write_text(text, encoding="utf-8")


try:
    import fcntl

    def _lock(fd: int) -> None:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise GitError("another Koda has held the checkpoint lock for 30 s") from None
                time.sleep(0.02)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows: no flock; one Koda per project is assumed there

    def _lock(fd: int) -> None:
        return None

    def _unlock(fd: int) -> None:
        return None
