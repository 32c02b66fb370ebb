"""Keeping tool paths inside the project, and turning OS errors into sentences for the model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from koda.tools.base import ToolError


def resolve_in_project(root: Path, raw: object, *, must_exist: bool = False) -> Path:
    """The real path `raw` names, refused unless it lies inside the project root.

    Symlinks are resolved before the check, so a link inside the project that points
    elsewhere is refused just like `../x` or an absolute path outside.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("A path is required: give a file or directory inside the project.")
    real_root = project_root(root)
    try:
        # realpath resolves every existing component and keeps the missing tail as written,
        # so files that do not exist yet can still be checked.
        resolved = Path(os.path.realpath(real_root / raw))
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
