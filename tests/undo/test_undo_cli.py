"""`koda undo`: restores the last checkpoint of the project and says which files changed back."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from koda.cli.undo_cmd import run_undo
from koda.paths import data_dir
from koda.undo import Checkpoints
from koda.undo.checkpoints import MAX_FILE_BYTES

from .helpers import files


def _save(project: Path, label: str) -> None:
    # Koda's data folder as the CLI finds it (KODA_HOME, set per test by the root conftest).
    assert asyncio.run(Checkpoints(project, data_dir()).save(label)) is not None


def test_undo_restores_and_lists_each_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files(project)
    _save(project, "turn 1: refactor")
    (project / "src" / "app.py").write_text("broken\n", encoding="utf-8")
    (project / "README.md").unlink()
    (project / "scratch.py").write_text("tmp\n", encoding="utf-8")
    (project / "huge.bin").write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    assert run_undo(["--project-root", str(project)]) == 0
    out = capsys.readouterr().out
    assert "Restored 3 files to the checkpoint before: turn 1: refactor" in out
    assert "  recreated  README.md" in out
    assert "  deleted    scratch.py" in out
    assert "  restored   src/app.py" in out
    assert "huge.bin" not in out
    after = files(project)
    assert after.pop("huge.bin") and after == before


def test_undo_from_inside_the_project_and_again(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(project, "turn 1")
    (project / "a.txt").write_text("1", encoding="utf-8")
    _save(project, "turn 2")
    (project / "b.txt").write_text("2", encoding="utf-8")
    monkeypatch.chdir(project)
    assert run_undo(["--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[-1] for line in listing] == ["turn 2", "turn 1"]
    assert run_undo([]) == 0 and "b.txt" in capsys.readouterr().out
    assert run_undo([]) == 0 and "a.txt" in capsys.readouterr().out
    assert not (project / "a.txt").exists() and not (project / "b.txt").exists()
    assert run_undo([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("koda: nothing to undo.") and "Traceback" not in err


def test_nothing_to_undo_and_bad_folders(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_undo(["--project-root", str(project)]) == 1
    assert "no checkpoint of this project" in capsys.readouterr().err
    assert run_undo(["--project-root", str(project), "--list"]) == 0
    assert "No checkpoints" in capsys.readouterr().out
    assert run_undo(["--project-root", str(tmp_path / "missing")]) == 1
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        run_undo(["--bogus"])
    assert info.value.code == 2


def test_checkpoints_are_per_project(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "o.txt").write_text("o", encoding="utf-8")
    _save(other, "other project")
    (other / "o.txt").write_text("changed", encoding="utf-8")
    assert run_undo(["--project-root", str(project)]) == 1
    assert (other / "o.txt").read_text(encoding="utf-8") == "changed"


def test_git_missing_is_one_clear_line(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(project, "turn")
    monkeypatch.setenv("PATH", os.devnull)
    assert run_undo(["--project-root", str(project)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "koda: undo failed: git is not installed, so Koda cannot keep undo checkpoints"
    )
