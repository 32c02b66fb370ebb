"""Fixtures for undo tests: a real project folder, Koda's data folder beside it, real git."""

from __future__ import annotations

from pathlib import Path

import pytest

from koda.undo import Checkpoints


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("# Demo\n", encoding="utf-8")
    (root / "src" / "app.py").write_text("def main():\n    return 1\n", encoding="utf-8")
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "koda-data"


@pytest.fixture
def checkpoints(project: Path, data: Path) -> Checkpoints:
    return Checkpoints(project, data)
