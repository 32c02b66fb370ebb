"""Checkpoints of the project's files, taken before a turn changes them, and undo to them.

Each checkpoint is a commit of the project's tree in a shadow repository (see shadow.py),
named refs/koda/checkpoints/<sequence>: the refs are the stack, so it survives restarts and is
shared by every session of the project and by `koda undo`. Files the project ignores, the usual
dependency and cache folders, and files over MAX_FILE_BYTES are not kept; an undo leaves them
as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from koda.paths import data_dir as default_data_dir
from koda.undo.shadow import GitError, GitMissingError, ShadowRepo

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_FILES = 100_000  # new or changed files in one checkpoint; more means a folder to ignore
MAX_CHECKPOINTS = 100
_STACK = "refs/koda/checkpoints/"
_BEFORE_UNDO = "refs/koda/before-undo"  # every state an undo replaced, so no undo loses work
_NO_REF = "0" * 40


class UndoError(Exception):
    """Undo could not run; the message says why, for the user."""


class NothingToUndoError(UndoError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    id: str
    label: str
    created_at: str
    tree: str
    skipped: tuple[str, ...]  # files over the size limit, not kept by this checkpoint
    ref: str


@dataclass(frozen=True)
class UndoResult:
    changed: list[str]  # every path put back, sorted
    restored_to: str  # the checkpoint's label
    deleted: list[str] = field(default_factory=list)  # created after the checkpoint
    recreated: list[str] = field(default_factory=list)  # deleted after the checkpoint
    kept: list[str] = field(default_factory=list)  # too big to keep then; left as they are


class Checkpoints:
    def __init__(self, project_root: Path, data_dir: Path | None = None) -> None:
        self.project_root = project_root.resolve()
        base = data_dir if data_dir is not None else default_data_dir()
        key = hashlib.sha256(os.fsencode(str(self.project_root))).hexdigest()[:16]
        self.repo = ShadowRepo(base.resolve() / "checkpoints" / key, self.project_root)
        self.last_error: str | None = None  # why the last save kept nothing, if it failed

    async def save(self, label: str) -> str | None:
        """Checkpoint the files; the checkpoint's id, or None if nothing changed since the last
        one or it could not be taken (see last_error). Never raises."""
        try:
            saved = await asyncio.to_thread(self._save, label)
        except Exception as exc:
            self.last_error = str(exc)
            log.warning("no undo checkpoint for %s: %s", self.project_root, exc)
            return None
        self.last_error = None
        return saved

    async def undo(self) -> UndoResult:
        """Put the files back as they were at the last checkpoint that differs from them now,
        and drop it from the stack."""
        try:
            return await asyncio.to_thread(self._undo)
        except (GitMissingError, GitError, OSError) as exc:
            raise UndoError(str(exc)) from None

    async def stack(self) -> list[Checkpoint]:
        """The stack, newest first."""
        try:
            return await asyncio.to_thread(self._read_stack)
        except (GitMissingError, GitError, OSError) as exc:
            raise UndoError(str(exc)) from None

    def _save(self, label: str) -> str | None:
        refusal = self._refusal()
        if refusal:
            raise UndoError(refusal)
        with self.repo.locked():
            self.repo.ensure(self._excludes())
            skipped = self._stage()
            tree = self.repo.git("write-tree").strip()
            stack = self._read_stack()
            if stack and stack[0].tree == tree:
                return None
            message = json.dumps({"label": " ".join(label.split())[:200], "skipped": skipped})
            commit = self.repo.git("commit-tree", tree, "-m", message).strip()
            number = int(stack[0].ref.rsplit("/", 1)[1]) + 1 if stack else 1
            self.repo.git("update-ref", f"{_STACK}{number:010d}", commit, _NO_REF)
            if len(stack) >= MAX_CHECKPOINTS:
                self._drop(*stack[MAX_CHECKPOINTS - 1 :])
            return commit

    def _undo(self) -> UndoResult:
        if not self.repo.exists():
            raise NothingToUndoError("There is no checkpoint of this project to go back to.")
        with self.repo.locked():
            self.repo.ensure(self._excludes())
            stack = self._read_stack()
            if not stack:
                raise NothingToUndoError("There is no checkpoint of this project to go back to.")
            self._stage()
            current = self.repo.git("write-tree").strip()
            self._keep(current)
            target = None
            for checkpoint in stack:
                if checkpoint.tree != current:
                    target = checkpoint
                    break
                self._drop(checkpoint)  # the turn after it changed nothing: not a step
            if target is None:
                raise NothingToUndoError("The files already match every checkpoint kept.")
            changes = self._diff(current, target.tree)
            kept = [p for p, status in changes if status == "D" and p in target.skipped]
            if kept:
                # Out of the index, they are nothing the restore removes.
                self.repo.git("update-index", "--force-remove", "-z", "--stdin", stdin=_z(kept))
            self.repo.git("read-tree", "--reset", "-u", target.tree)
            self._drop(target)
        back = [(p, s) for p, s in changes if p not in kept]
        return UndoResult(
            changed=sorted(p for p, _ in back),
            restored_to=target.label,
            deleted=sorted(p for p, s in back if s == "D"),
            recreated=sorted(p for p, s in back if s == "A"),
            kept=sorted(kept),
        )

    def _stage(self) -> list[str]:
        """Bring the shadow index up to date with the files; the paths left out for size."""
        # One walk of the tree: "? path" is new, "C path" is tracked and changed or gone.
        listed = self.repo.git(
            "ls-files", "-z", "-t", "--others", "--modified", "--exclude-standard"
        )
        entries = [(e[0], e[2:]) for e in listed.split("\0") if e]
        if len(entries) > MAX_FILES:
            raise UndoError(
                f"{len(entries)} files are new or changed since the last checkpoint (the limit is "
                f"{MAX_FILES}); add the folders that hold them to .gitignore"
            )
        big: list[str] = []
        stale: list[str] = []  # tracked by an earlier checkpoint, now huge: this one drops them
        changed: list[str] = []
        for tag, path in entries:
            if path.endswith("/"):
                # Another repository inside the project (a clone, a vendored checkout): its
                # files belong to it, and git cannot stage them here.
                continue
            if _size(self.project_root / path) > MAX_FILE_BYTES:
                big.append(path)
                if tag == "C":
                    stale.append(path)
            else:
                changed.append(path)
        if stale:
            self.repo.git("update-index", "--force-remove", "-z", "--stdin", stdin=_z(stale))
        if changed:
            self.repo.git(
                "update-index", "--add", "--remove", "--replace", "-z", "--stdin", stdin=_z(changed)
            )
        return sorted(big)

    def _read_stack(self) -> list[Checkpoint]:
        if not self.repo.exists():
            return []
        out = self.repo.git(
            "for-each-ref",
            "--sort=-refname",
            "--format=%(refname)%00%(objectname)%00%(tree)%00%(creatordate:iso-strict)"
            "%00%(contents:subject)",
            _STACK,
        )
        stack = []
        for line in out.splitlines():
            ref, commit, tree, created, message = line.split("\0", 4)
            try:
                meta = json.loads(message)
            except ValueError:
                meta = {}
            label = str(meta.get("label", message)) if isinstance(meta, dict) else message
            skipped = meta.get("skipped", []) if isinstance(meta, dict) else []
            stack.append(Checkpoint(commit, label, created, tree, tuple(skipped), ref))
        return stack

    def _keep(self, tree: str) -> None:
        parent = self.repo.git("for-each-ref", "--format=%(objectname)", _BEFORE_UNDO).strip()
        extra = ["-p", parent] if parent else []
        commit = self.repo.git("commit-tree", tree, *extra, "-m", "before undo").strip()
        self.repo.git("update-ref", _BEFORE_UNDO, commit)

    def _drop(self, *checkpoints: Checkpoint) -> None:
        lines = "".join(f"delete {c.ref} {c.id}\n" for c in checkpoints)
        self.repo.git("update-ref", "--stdin", stdin=lines.encode())

    def _diff(self, current: str, target: str) -> list[tuple[str, str]]:
        """(path, status) from the files now to the checkpoint: A = comes back, D = goes."""
        out = self.repo.git(
            "diff-tree", "-r", "-z", "--no-renames", "--name-status", current, target
        )
        fields = [f for f in out.split("\0") if f]
        return [(fields[i + 1], fields[i][:1]) for i in range(0, len(fields) - 1, 2)]

    def _excludes(self) -> list[str]:
        """The project's own .git/info/exclude, and Koda's data if it lives in the project."""
        lines: list[str] = []
        try:
            text = (self.project_root / ".git" / "info" / "exclude").read_text("utf-8", "replace")
            lines += text.splitlines()
        except OSError:
            pass
        if self.repo.git_dir.is_relative_to(self.project_root):
            inside = self.repo.git_dir.parent.relative_to(self.project_root).as_posix()
            lines.append(f"/{_escape(inside)}/")
        return lines

    def _refusal(self) -> str | None:
        root = self.project_root
        if root == Path.home().resolve() or root == Path(root.anchor):
            return f"checkpoints are off in {root}: it is a home or root folder, not a project"
        return None


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0  # deleted since it was listed: nothing big to skip


def _z(paths: list[str]) -> bytes:
    return b"".join(os.fsencode(p) + b"\0" for p in paths)


def _escape(path: str) -> str:
    """A literal path as a .gitignore pattern."""
    for special in "\\*?[!#":
        path = path.replace(special, "\\" + special)
    return path
