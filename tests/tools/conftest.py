"""Fixtures for tool tests: a real project directory under tmp_path and a ToolContext over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from koda.cancel import CancelToken
from koda.tools.base import ToolContext


class RecordingTracker:
    """Remembers what tools report as created and read, like the engine's tracker without a
    store."""

    def __init__(self) -> None:
        self.created: list[Path] = []
        self.reads: dict[Path, str] = {}

    def record_created(self, path: Path) -> None:
        self.created.append(path)

    def is_owned(self, path: Path) -> bool:
        return path in self.created

    def record_read(self, path: Path, digest: str) -> None:
        self.reads[path] = digest

    def read_digest(self, path: Path) -> str | None:
        return self.reads.get(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    # The project is a subdirectory so tests have a real "outside" next to it.
    project = tmp_path / "project"
    project.mkdir()
    return project


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    other = tmp_path / "outside"
    other.mkdir()
    (other / "secret.txt").write_text("top secret\n", encoding="utf-8")
    return other


@pytest.fixture
def tracker() -> RecordingTracker:
    return RecordingTracker()


@pytest.fixture
def ctx(root: Path, tracker: RecordingTracker) -> ToolContext:
    return ToolContext(project_root=root, cancel=CancelToken(), file_tracker=tracker)
