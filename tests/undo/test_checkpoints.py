"""Checkpoints and undo on real files with real git: every kind of change comes back."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from koda.undo import Checkpoints, NothingToUndoError

from .helpers import files


async def test_overwrite_is_undone(checkpoints: Checkpoints, project: Path) -> None:
    before = files(project)
    assert await checkpoints.save("turn 1: rewrite app") is not None
    (project / "src" / "app.py").write_text("print('rewritten')\n", encoding="utf-8")
    result = await checkpoints.undo()
    assert files(project) == before
    assert result.changed == ["src/app.py"] and result.restored_to == "turn 1: rewrite app"
    assert result.deleted == result.recreated == result.kept == []


async def test_created_files_are_deleted_with_their_new_folders(
    checkpoints: Checkpoints, project: Path
) -> None:
    before = files(project)
    await checkpoints.save("turn")
    (project / "pkg" / "deep").mkdir(parents=True)
    (project / "pkg" / "deep" / "new.py").write_text("x = 1\n", encoding="utf-8")
    (project / "notes.txt").write_text("hi", encoding="utf-8")
    result = await checkpoints.undo()
    assert files(project) == before
    assert not (project / "pkg").exists()  # the folders the turn made are gone too
    assert result.deleted == ["notes.txt", "pkg/deep/new.py"]


async def test_edit_keeps_exact_bytes(checkpoints: Checkpoints, project: Path) -> None:
    # CRLF, a non-UTF-8 byte and no final newline; .gitattributes asks git to convert them.
    raw = b"line one\r\nlatin-1 caf\xe9\r\nno newline at end"
    (project / "win.txt").write_bytes(raw)
    (project / ".gitattributes").write_text("* text=auto eol=lf\n", encoding="utf-8")
    await checkpoints.save("turn")
    (project / "win.txt").write_bytes(raw.replace(b"one", b"ONE"))
    await checkpoints.undo()
    assert (project / "win.txt").read_bytes() == raw


async def test_deleted_files_come_back_with_mode_and_symlinks(
    checkpoints: Checkpoints, project: Path
) -> None:
    script = project / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n", encoding="utf-8")
    script.chmod(0o755)
    (project / "link").symlink_to("src/app.py")
    before = files(project)
    await checkpoints.save("turn")
    script.unlink()
    (project / "link").unlink()
    (project / "src" / "app.py").unlink()
    (project / "src").rmdir()
    result = await checkpoints.undo()
    assert files(project) == before
    assert script.stat().st_mode & stat.S_IXUSR
    assert (project / "link").is_symlink() and os.readlink(project / "link") == "src/app.py"
    assert result.recreated == ["link", "run.sh", "src/app.py"]


async def test_changes_made_by_a_subprocess_are_undone(
    checkpoints: Checkpoints, project: Path
) -> None:
    before = files(project)
    await checkpoints.save("turn: bash")
    # What a Bash tool call does: the change happens in another process.
    subprocess.run(
        "mv README.md README.old && sed 's/1/2/' src/app.py > tmp && mv tmp src/app.py"
        " && mkdir -p out && seq 1 1000 > out/numbers.txt",
        shell=True,
        cwd=project,
        check=True,
    )
    result = await checkpoints.undo()
    assert files(project) == before
    assert result.changed == ["README.md", "README.old", "out/numbers.txt", "src/app.py"]


async def test_many_changes_in_one_turn_are_one_step(
    checkpoints: Checkpoints, project: Path
) -> None:
    before = files(project)
    await checkpoints.save("turn 1")
    for i in range(5):
        (project / f"f{i}.txt").write_text(str(i), encoding="utf-8")
        (project / "src" / "app.py").write_text(f"v{i}\n", encoding="utf-8")
    await checkpoints.undo()
    assert files(project) == before
    with pytest.raises(NothingToUndoError):
        await checkpoints.undo()


async def test_lifo_across_turns_and_restarts(project: Path, data: Path) -> None:
    app = project / "src" / "app.py"
    states = []
    for turn in range(1, 4):
        states.append(files(project))
        # A new Checkpoints each turn, as after a restart: the stack lives on disk.
        assert await Checkpoints(project, data).save(f"turn {turn}") is not None
        app.write_text(f"turn {turn}\n", encoding="utf-8")
        (project / f"made-in-{turn}.txt").write_text("x", encoding="utf-8")
    labels = [c.label for c in await Checkpoints(project, data).stack()]
    assert labels == ["turn 3", "turn 2", "turn 1"]
    for turn in (3, 2, 1):
        result = await Checkpoints(project, data).undo()
        assert result.restored_to == f"turn {turn}"
        assert files(project) == states[turn - 1]
    with pytest.raises(NothingToUndoError):
        await Checkpoints(project, data).undo()


async def test_no_checkpoint_when_nothing_changed(checkpoints: Checkpoints, project: Path) -> None:
    first = await checkpoints.save("turn 1")
    assert first is not None
    assert await checkpoints.save("turn 2") is None
    (project / "README.md").touch()  # a new mtime alone is not a change
    assert await checkpoints.save("turn 3") is None
    assert [c.id for c in await checkpoints.stack()] == [first]
    assert checkpoints.last_error is None


async def test_a_turn_that_changed_nothing_is_skipped_by_undo(
    checkpoints: Checkpoints, project: Path
) -> None:
    before = files(project)
    await checkpoints.save("turn 1")
    (project / "README.md").write_text("changed by turn 1\n", encoding="utf-8")
    await checkpoints.save("turn 2")  # turn 2 ran `pytest` and changed nothing
    result = await checkpoints.undo()
    assert result.restored_to == "turn 1" and files(project) == before
    assert await checkpoints.stack() == []


async def test_undo_after_undo_of_a_redone_change(checkpoints: Checkpoints, project: Path) -> None:
    original = files(project)
    await checkpoints.save("turn 1")
    (project / "a.txt").write_text("a", encoding="utf-8")
    await checkpoints.undo()
    # The next turn changes something else; undoing it goes back to the restored state.
    await checkpoints.save("turn 2")
    (project / "b.txt").write_text("b", encoding="utf-8")
    result = await checkpoints.undo()
    assert result.changed == ["b.txt"] and files(project) == original


async def test_the_state_an_undo_replaced_is_kept(checkpoints: Checkpoints, project: Path) -> None:
    await checkpoints.save("turn")
    (project / "src" / "app.py").write_text("work I still want\n", encoding="utf-8")
    await checkpoints.undo()
    kept = checkpoints.repo.git("show", "refs/koda/before-undo:src/app.py")
    assert kept == "work I still want\n"


@pytest.mark.parametrize(
    "name",
    ["with space.txt", "ünïcödé.md", "-leading-dash", "[a]*?.txt", "!bang", "#hash", "tab\tname"],
)
async def test_awkward_file_names(checkpoints: Checkpoints, project: Path, name: str) -> None:
    target = project / "dir" / name
    target.parent.mkdir()
    target.write_text("before", encoding="utf-8")
    before = files(project)
    await checkpoints.save("turn")
    target.write_text("after", encoding="utf-8")
    (project / "dir" / f"new {name}").write_text("new", encoding="utf-8")
    result = await checkpoints.undo()
    assert files(project) == before
    assert f"dir/{name}" in result.changed


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS refuses non-UTF-8 file names")
async def test_non_utf8_file_name(checkpoints: Checkpoints, project: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")
    (project / name).write_bytes(b"old")
    await checkpoints.save("turn")
    (project / name).write_bytes(b"new")
    result = await checkpoints.undo()
    assert (project / name).read_bytes() == b"old" and result.changed == [name]


async def test_concurrent_saves_from_two_sessions(project: Path, data: Path) -> None:
    (project / "a.txt").write_text("a", encoding="utf-8")
    saved = await asyncio.gather(*(Checkpoints(project, data).save(f"s{i}") for i in range(4)))
    # One took the checkpoint; the others found nothing new, and none failed.
    assert sum(s is not None for s in saved) == 1
    assert len(await Checkpoints(project, data).stack()) == 1


async def test_a_crashed_git_leaves_no_lasting_lock(
    checkpoints: Checkpoints, project: Path
) -> None:
    await checkpoints.save("turn 1")
    (checkpoints.repo.git_dir / "index.lock").write_text("", encoding="utf-8")
    (project / "a.txt").write_text("a", encoding="utf-8")
    assert await checkpoints.save("turn 2") is not None, checkpoints.last_error


async def test_the_stack_is_capped(
    checkpoints: Checkpoints, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("koda.undo.checkpoints.MAX_CHECKPOINTS", 3)
    for i in range(6):
        await checkpoints.save(f"turn {i}")
        (project / "a.txt").write_text(str(i), encoding="utf-8")
    assert [c.label for c in await checkpoints.stack()] == ["turn 5", "turn 4", "turn 3"]
