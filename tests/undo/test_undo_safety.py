"""What undo must never touch or break: the user's git, ignored and huge files, odd setups."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from koda.undo import Checkpoints, NothingToUndoError, UndoError
from koda.undo.checkpoints import MAX_FILE_BYTES

from .helpers import files, git


def _dot_git_state(root: Path) -> dict[str, str]:
    """A fingerprint of everything in the user's .git that git itself would change."""
    state = {}
    for path in sorted((root / ".git").rglob("*")):
        if path.is_file():
            state[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture
def user_repo(project: Path) -> Path:
    git(project, "init", "-q")
    git(
        project,
        "-c",
        "user.name=U",
        "-c",
        "user.email=u@x",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "0",
    )
    git(project, "add", "README.md")
    git(project, "-c", "user.name=U", "-c", "user.email=u@x", "commit", "-q", "-m", "first")
    git(project, "add", "src/app.py")  # staged, not committed: the index must stay so
    return project


async def test_the_users_git_is_never_touched(user_repo: Path, data: Path) -> None:
    head, status = git(user_repo, "rev-parse", "HEAD"), git(user_repo, "status", "--porcelain")
    dot_git = _dot_git_state(user_repo)
    checkpoints = Checkpoints(user_repo, data)
    await checkpoints.save("turn")
    (user_repo / "README.md").write_text("changed\n", encoding="utf-8")
    (user_repo / "new.txt").write_text("new\n", encoding="utf-8")
    assert _dot_git_state(user_repo) == dot_git  # saving wrote nothing there
    await checkpoints.undo()
    assert _dot_git_state(user_repo) == dot_git  # nor did undoing
    assert git(user_repo, "rev-parse", "HEAD") == head
    assert git(user_repo, "status", "--porcelain") == status
    assert git(user_repo, "stash", "list") == "" and "koda" not in git(user_repo, "branch", "-a")


async def test_works_in_a_folder_that_is_not_a_git_repository(
    checkpoints: Checkpoints, project: Path
) -> None:
    await checkpoints.save("turn")
    (project / "README.md").unlink()
    await checkpoints.undo()
    assert (project / "README.md").read_text(encoding="utf-8") == "# Demo\n"
    assert not (project / ".git").exists()
    assert checkpoints.repo.git_dir.parent.parent == (project.parent / "koda-data").resolve()


async def test_ignored_and_dependency_folders_are_left_alone(
    checkpoints: Checkpoints, project: Path
) -> None:
    (project / ".gitignore").write_text("*.log\nsecret/\n", encoding="utf-8")
    (project / "app.log").write_text("old log\n", encoding="utf-8")
    (project / "secret").mkdir()
    (project / "secret" / "key").write_text("k1", encoding="utf-8")
    for folder in ("node_modules/lib", ".venv/bin", "__pycache__"):
        (project / folder).mkdir(parents=True)
        (project / folder / "f").write_text("dep", encoding="utf-8")
    await checkpoints.save("turn")
    (project / "app.log").write_text("new log\n", encoding="utf-8")
    (project / "run.log").write_text("created\n", encoding="utf-8")
    (project / "secret" / "key").unlink()
    (project / "node_modules" / "lib" / "f").write_text("upgraded", encoding="utf-8")
    (project / ".venv" / "bin" / "g").write_text("installed", encoding="utf-8")
    (project / "README.md").write_text("tracked change\n", encoding="utf-8")
    result = await checkpoints.undo()
    assert result.changed == ["README.md"]
    assert (project / "app.log").read_text(encoding="utf-8") == "new log\n"
    assert (project / "run.log").exists() and not (project / "secret" / "key").exists()
    assert (project / "node_modules" / "lib" / "f").read_text(encoding="utf-8") == "upgraded"
    assert (project / ".venv" / "bin" / "g").exists()


async def test_the_users_own_excludes_are_respected(user_repo: Path, data: Path) -> None:
    (user_repo / ".git" / "info" / "exclude").write_text("local-only/\n", encoding="utf-8")
    (user_repo / "local-only").mkdir()
    checkpoints = Checkpoints(user_repo, data)
    await checkpoints.save("turn")
    (user_repo / "local-only" / "scratch.txt").write_text("mine", encoding="utf-8")
    (user_repo / "README.md").write_text("x", encoding="utf-8")
    await checkpoints.undo()
    assert (user_repo / "local-only" / "scratch.txt").exists()


def _big(path: Path, fill: bytes = b"x") -> None:
    path.write_bytes(fill * (MAX_FILE_BYTES + 1))


async def test_huge_files_are_skipped_and_never_deleted(
    checkpoints: Checkpoints, project: Path
) -> None:
    _big(project / "dataset.bin")
    await checkpoints.save("turn 1")
    [first] = await checkpoints.stack()
    assert first.skipped == ("dataset.bin",)
    # Shrunk by the turn: the checkpoint never had it, so undo keeps it as it is now.
    (project / "dataset.bin").write_bytes(b"small now")
    _big(project / "[new] dump.bin")  # created huge by the turn: not kept, so not removed
    (project / "README.md").write_text("edited\n", encoding="utf-8")
    result = await checkpoints.undo()
    assert result.kept == ["dataset.bin"] and result.changed == ["README.md"]
    assert (project / "dataset.bin").read_bytes() == b"small now"
    assert (project / "[new] dump.bin").stat().st_size == MAX_FILE_BYTES + 1


async def test_a_file_grown_huge_is_restored_small(checkpoints: Checkpoints, project: Path) -> None:
    (project / "log.txt").write_text("short\n", encoding="utf-8")
    await checkpoints.save("turn 1")
    _big(project / "log.txt")
    await checkpoints.save("turn 2")  # huge now: left out of this checkpoint
    (project / "log.txt").write_text("short again, edited\n", encoding="utf-8")
    result = await checkpoints.undo()  # back to turn 2's start: the huge file was not kept
    assert result.kept == ["log.txt"]
    result = await checkpoints.undo()
    assert (project / "log.txt").read_text(encoding="utf-8") == "short\n"
    assert "log.txt" in result.changed


async def test_without_git_save_returns_none_and_undo_says_why(
    checkpoints: Checkpoints, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert await checkpoints.save("turn") is None
    assert checkpoints.last_error is not None and "git is not installed" in checkpoints.last_error
    with pytest.raises(UndoError):
        await checkpoints.undo()


async def test_git_missing_after_a_checkpoint_was_taken(
    checkpoints: Checkpoints, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await checkpoints.save("turn")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UndoError, match="git is not installed"):
        await checkpoints.undo()


async def test_no_checkpoints_in_the_home_folder(
    project: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(project))
    checkpoints = Checkpoints(project, data)
    assert await checkpoints.save("turn") is None
    assert checkpoints.last_error is not None and "home or root folder" in checkpoints.last_error
    assert not data.exists()
    with pytest.raises(NothingToUndoError):
        await checkpoints.undo()


async def test_koda_data_inside_the_project_is_not_checkpointed(project: Path) -> None:
    checkpoints = Checkpoints(project, project / ".koda-data")
    await checkpoints.save("turn 1")
    (project / "README.md").write_text("edit\n", encoding="utf-8")
    await checkpoints.save("turn 2")
    tracked = checkpoints.repo.git("ls-files")
    assert ".koda-data" not in tracked
    result = await checkpoints.undo()
    assert result.changed == ["README.md"]
    assert checkpoints.repo.exists()


async def test_the_users_git_settings_and_variables_change_nothing(
    checkpoints: Checkpoints,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A hostile setup: a failing hook everywhere, signing on, CRLF conversion, a bogus GIT_DIR.
    home = tmp_path / "home"
    hooks = home / "hooks"
    hooks.mkdir(parents=True)
    for hook in ("pre-commit", "post-checkout", "reference-transaction", "post-index-change"):
        (hooks / hook).write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
        (hooks / hook).chmod(0o755)
    (home / ".gitconfig").write_text(
        f"[core]\n\thooksPath = {hooks}\n\tautocrlf = true\n[commit]\n\tgpgsign = true\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "bogus"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "bogus-index"))
    (project / "crlf.txt").write_bytes(b"a\r\nb\r\n")
    assert await checkpoints.save("turn") is not None, checkpoints.last_error
    (project / "crlf.txt").write_bytes(b"changed")
    await checkpoints.undo()
    assert (project / "crlf.txt").read_bytes() == b"a\r\nb\r\n"
    assert not (tmp_path / "bogus").exists() and not (tmp_path / "bogus-index").exists()


@pytest.mark.parametrize("committed", [False, True])
async def test_a_nested_repository_is_not_destroyed(
    checkpoints: Checkpoints, project: Path, committed: bool
) -> None:
    vendored = project / "vendor" / "lib"
    vendored.mkdir(parents=True)
    git(vendored, "init", "-q")
    (vendored / "lib.c").write_text("int x;\n", encoding="utf-8")
    if committed:
        git(vendored, "add", "-A")
        git(vendored, "-c", "user.name=U", "-c", "user.email=u@x", "commit", "-q", "-m", "v")
    head = git(vendored, "status", "--porcelain")
    await checkpoints.save("turn")
    (project / "README.md").write_text("edit\n", encoding="utf-8")
    clone = project / "cloned"  # a repository the turn made: also left alone
    clone.mkdir()
    git(clone, "init", "-q")
    result = await checkpoints.undo()
    assert result.changed == ["README.md"]
    assert (project / "README.md").read_text(encoding="utf-8") == "# Demo\n"
    assert (vendored / "lib.c").read_text(encoding="utf-8") == "int x;\n"
    assert git(vendored, "status", "--porcelain") == head
    assert (clone / ".git").is_dir()


def _mid_size_project(root: Path) -> None:
    """About 3,000 source files in 150 folders, 20 MB: a mid-size project."""
    chunk = "".join(f"def function_{i}(x):\n    return x * {i}\n\n" for i in range(200))
    for d in range(150):
        folder = root / f"pkg{d}"
        folder.mkdir()
        for f in range(20):
            (folder / f"mod{f}.py").write_text(f"# {d}/{f}\n{chunk}", encoding="utf-8")


async def test_checkpoints_of_a_mid_size_project_are_fast(
    checkpoints: Checkpoints, project: Path
) -> None:
    _mid_size_project(project)
    t0 = time.perf_counter()
    await checkpoints.save("first ever")
    first = time.perf_counter() - t0
    timings = []
    for turn in range(3):
        (project / "pkg7" / "mod3.py").write_text(f"changed {turn}\n", encoding="utf-8")
        subprocess.run(["touch", str(project / "pkg9" / "mod1.py")], check=True)
        t0 = time.perf_counter()
        assert await checkpoints.save(f"turn {turn}") is not None
        timings.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    assert await checkpoints.save("nothing changed") is None
    noop = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = await checkpoints.undo()
    undo = time.perf_counter() - t0
    assert result.changed == ["pkg7/mod3.py"]
    print(
        f"\nfirst {first:.3f} s, next {max(timings):.3f} s, no-op {noop:.3f} s, undo {undo:.3f} s"
    )
    assert max(timings) < 1.0 and noop < 1.0 and undo < 1.0
    assert first < 10.0
    assert len(files(project)) >= 3000
    assert os.environ.get("GIT_DIR") is None


async def test_save_never_raises_when_the_data_folder_is_unusable(
    project: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where Koda's data folder should be", encoding="utf-8")
    checkpoints = Checkpoints(project, blocker)
    assert await checkpoints.save("turn") is None
    assert checkpoints.last_error


async def test_too_many_new_files_is_refused_with_advice(
    checkpoints: Checkpoints, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("koda.undo.checkpoints.MAX_FILES", 5)
    for i in range(10):
        (project / f"gen{i}.txt").write_text("x", encoding="utf-8")
    assert await checkpoints.save("turn") is None
    assert checkpoints.last_error is not None and ".gitignore" in checkpoints.last_error
    monkeypatch.setattr("koda.undo.checkpoints.MAX_FILES", 100)
    assert await checkpoints.save("turn") is not None and checkpoints.last_error is None
