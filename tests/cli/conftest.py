"""Fixtures for the command-line tests: every test gets its own project, store and script."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Koda


@pytest.fixture
def koda(tmp_path: Path) -> Koda:
    return Koda(tmp_path)
