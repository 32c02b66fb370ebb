"""Keeping tool paths inside the project, and turning OS errors into sentences for the model."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from koda.tools.base import ToolError


def resolve_in_project(
    root: Path, raw: object, *, must_exist: bool = False, keep_link: bool = False
) -> Path:
    """The real path `raw` names, refused unless it lies inside the project root.

    Symlinks are resolved before the check, so a link inside the project that points
    elsewhere is refused just like `../x` or an absolute path outside. With `keep_link`, a
    symlink in the last component is kept as the link itself (what Delete removes).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("A path is required: give a file or directory inside the project.")
    real_root = project_root(root)
    try:
        # realpath resolves every existing component and keeps the missing tail as written,
        # so files that do not exist yet can still be checked.
        joined = real_root / raw
        if keep_link and joined.name not in ("", ".", ".."):
            resolved = Path(os.path.realpath(joined.parent)) / joined.name
        else:
            resolved = Path(os.path.realpath(joined))
    except (OSError, ValueError) as exc:
        raise ToolError(f"Invalid path {raw!r}: {exc}.") from exc
    if not resolved.is_relative_to(real_root):
        raise ToolError(
            f"Path {raw!r} is outside the project ({real_root.name}/); "
            "tools only work on files inside the project directory."
        )
    if must_exist and not resolved.exists():
        raise ToolError(f"Path not found: {raw}")
    return resolved


def project_root(root: Path) -> Path:
    """The root with symlinks resolved, which is what resolved paths are compared against."""
    return Path(os.path.realpath(root))


def display_path(root: Path, path: Path) -> str:
    """`path` relative to the project root, as the model should write it back."""
    try:
        rel = path.relative_to(project_root(root))
    except ValueError:
        return str(path)
    return rel.as_posix() if rel.parts else "."


def where(shown: str) -> str:
    """A displayed path as the place a search ran, for sentences."""
    return "the project" if shown == "." else shown


@contextmanager
def open_parent(root: Path, path: Path, *, create: bool = False) -> Iterator[int]:
    """A descriptor of the directory holding `path` (a resolved path inside the project).

    The directory is reached from the project root one component at a time, refusing to
    follow any symlink: `path` was resolved already, so a link found on the way was put there
    after the check (a raced swap) and could lead outside. Work done relative to the
    descriptor stays in the directory that was checked, whatever is renamed meanwhile.
    `create` makes missing directories on the way.
    """
    real_root = project_root(root)
    parts = path.relative_to(real_root).parts
    if not parts:
        raise ToolError("The project root itself cannot be changed this way.")
    fd = os.open(real_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                # Linux says ENOTDIR for a link opened as a directory, others ELOOP.
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(part, fd):
                    raise ToolError(
                        f"{display_path(root, path)}: the directory {part!r} was replaced by a "
                        "symbolic link while the tool ran; nothing was changed."
                    ) from exc
                raise
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def check_parent_unmoved(root: Path, path: Path, dir_fd: int) -> None:
    """Refuse when `path`'s directory is no longer the one `dir_fd` holds (a component was
    renamed or swapped for a link since `open_parent`)."""
    held = os.fstat(dir_fd)
    try:
        now = os.stat(path.parent)
    except OSError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
        raise ToolError(
            f"{display_path(root, path)}: a directory on its path was moved or replaced while "
            "the tool ran; nothing was changed."
        )


@contextmanager
def fs_errors(shown: str) -> Iterator[None]:
    """Re-raise OS and codec errors as ToolErrors that name the file, instead of crashing."""
    try:
        yield
    except OSError as exc:
        raise ToolError(_describe(exc, shown)) from exc
    except UnicodeError as exc:
        raise ToolError(f"Could not convert the text of {shown}: {exc}.") from exc


def _describe(exc: OSError, shown: str) -> str:
    if isinstance(exc, PermissionError):
        return f"Permission denied: {shown}"
    if isinstance(exc, FileNotFoundError):
        return f"File not found: {shown}"
    if isinstance(exc, IsADirectoryError):
        return f"{shown} is a directory, not a file."
    if isinstance(exc, NotADirectoryError):
        return f"A parent of {shown} is a file, not a directory."
    return f"Could not access {shown}: {exc.strerror or exc}."
