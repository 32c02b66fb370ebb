"""Delete on real files: what it removes, what it refuses, and when it needs no approval."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from koda.tools import delete as delete_module
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.delete import Delete
from koda.tools.write import Write


async def delete(ctx: ToolContext, **args: Any) -> ToolResult:
    return await Delete().run(ctx, args)


async def test_a_file_is_deleted_with_its_size(ctx: ToolContext, root: Path) -> None:
    (root / "old.log").write_bytes(b"x" * 1234)
    result = await delete(ctx, path="old.log")
    assert result.ok
    assert result.output == "Deleted old.log (1,234 bytes)"
    assert not (root / "old.log").exists()


async def test_an_empty_directory_needs_no_recursive(ctx: ToolContext, root: Path) -> None:
    (root / "empty").mkdir()
    result = await delete(ctx, path="empty")
    assert result.output == "Deleted the empty directory empty"
    assert not (root / "empty").exists()


async def test_a_non_empty_directory_needs_recursive(ctx: ToolContext, root: Path) -> None:
    (root / "build" / "lib").mkdir(parents=True)
    (root / "build" / "a.o").write_text("a")
    (root / "build" / "lib" / "b.o").write_text("b")
    with pytest.raises(ToolError, match="build is a directory that is not empty; set recursive"):
        await delete(ctx, path="build")
    assert (root / "build" / "lib" / "b.o").exists()
    result = await delete(ctx, path="build", recursive=True)
    assert result.output == "Deleted the directory build (2 file(s), 1 subdirectory(ies))"
    assert not (root / "build").exists()


@pytest.mark.parametrize("raw", [".", "./", "src/..", "src/../."])
async def test_the_project_root_is_refused(ctx: ToolContext, root: Path, raw: str) -> None:
    (root / "src").mkdir()
    with pytest.raises(ToolError, match="Refusing to delete the project root"):
        await delete(ctx, path=raw, recursive=True)
    assert (root / "src").is_dir()


async def test_the_root_through_its_absolute_path_is_refused(ctx: ToolContext, root: Path) -> None:
    with pytest.raises(ToolError, match="Refusing to delete the project root"):
        await delete(ctx, path=str(root), recursive=True)
    assert root.is_dir()


@pytest.mark.parametrize("raw", ["..", "../..", "/", "../outside"])
async def test_ancestors_and_outside_paths_are_refused(
    ctx: ToolContext, root: Path, outside: Path, raw: str
) -> None:
    with pytest.raises(ToolError, match="outside the project"):
        await delete(ctx, path=raw, recursive=True)
    assert root.is_dir() and (outside / "secret.txt").exists()


async def test_deleting_a_symlink_removes_the_link_not_its_target(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "to-secret").symlink_to(outside / "secret.txt")
    (root / "to-outside").symlink_to(outside, target_is_directory=True)
    result = await delete(ctx, path="to-secret")
    assert result.output.startswith("Deleted the symlink to-secret (it pointed to ")
    assert "that was left alone" in result.output
    await delete(ctx, path="to-outside/", recursive=True)
    assert not os.path.lexists(root / "to-secret")
    assert not os.path.lexists(root / "to-outside")
    assert (outside / "secret.txt").read_text() == "top secret\n"


async def test_a_link_to_the_project_root_is_just_a_link(ctx: ToolContext, root: Path) -> None:
    (root / "keep.txt").write_text("k")
    (root / "here").symlink_to(root, target_is_directory=True)
    await delete(ctx, path="here", recursive=True)
    assert (root / "keep.txt").exists()
    assert not os.path.lexists(root / "here")


async def test_a_path_through_a_link_pointing_out_is_refused(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ToolError, match="outside the project"):
        await delete(ctx, path="escape/secret.txt")
    assert (outside / "secret.txt").exists()


async def test_recursive_delete_does_not_follow_links_inside(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "tree").mkdir()
    (root / "tree" / "out").symlink_to(outside, target_is_directory=True)
    await delete(ctx, path="tree", recursive=True)
    assert not (root / "tree").exists()
    assert (outside / "secret.txt").read_text() == "top secret\n"


async def test_a_raced_swap_of_a_parent_is_refused(
    ctx: ToolContext, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "secret.txt").write_text("inside copy\n")
    real = delete_module.resolve_in_project

    def resolve_then_swap(*args: Any, **kwargs: Any) -> Path:
        resolved = real(*args, **kwargs)
        (root / "sub").rename(root / "sub.old")
        (root / "sub").symlink_to(outside, target_is_directory=True)
        return resolved

    monkeypatch.setattr(delete_module, "resolve_in_project", resolve_then_swap)
    with pytest.raises(ToolError, match="replaced by a symbolic link"):
        await delete(ctx, path="sub/secret.txt")
    assert (outside / "secret.txt").read_text() == "top secret\n"


async def test_missing_paths_and_bad_arguments(ctx: ToolContext, root: Path) -> None:
    with pytest.raises(ToolError, match=r"^Path not found: ghost\.txt$"):
        await delete(ctx, path="ghost.txt")
    for args in ({}, {"path": ""}, {"path": 7}):
        with pytest.raises(ToolError, match="A path is required"):
            await Delete().run(ctx, args)
    (root / "d").mkdir()
    with pytest.raises(ToolError, match="'recursive' must be a boolean"):
        await delete(ctx, path="d", recursive="please")
    assert (root / "d").exists()


async def test_a_dangling_symlink_can_be_deleted(ctx: ToolContext, root: Path) -> None:
    (root / "dangling").symlink_to(root / "nowhere")
    await delete(ctx, path="dangling")
    assert not os.path.lexists(root / "dangling")


# Effect: destructive, except for a file this session created.


async def test_a_file_koda_created_needs_no_approval(ctx: ToolContext, root: Path) -> None:
    await Write().run(ctx, {"path": "scratch/tmp.py", "content": "x\n"})
    (root / "users.py").write_text("theirs\n")
    tool = Delete()
    assert tool.effect({"path": "scratch/tmp.py"}) is Effect.DESTRUCTIVE
    assert tool.owned_effect(ctx, {"path": "scratch/tmp.py"}) is Effect.LOCAL_MUTATION
    assert tool.owned_effect(ctx, {"path": "./scratch/../scratch/tmp.py"}) is Effect.LOCAL_MUTATION
    assert tool.owned_effect(ctx, {"path": "users.py"}) is Effect.DESTRUCTIVE
    # The directory holding it was not itself recorded as created.
    assert tool.owned_effect(ctx, {"path": "scratch", "recursive": True}) is Effect.DESTRUCTIVE


@pytest.mark.parametrize(
    "args", [{}, {"path": None}, {"path": "../x"}, {"path": "gone.txt"}, {"path": 3}, "garbage"]
)
async def test_owned_effect_never_raises_and_stays_destructive(ctx: ToolContext, args: Any) -> None:
    assert Delete().owned_effect(ctx, args) is Effect.DESTRUCTIVE


async def test_a_link_named_like_an_owned_file_is_not_owned(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    await Write().run(ctx, {"path": "made.txt", "content": "x"})
    (root / "alias.txt").symlink_to(root / "made.txt")
    assert Delete().owned_effect(ctx, {"path": "alias.txt"}) is Effect.DESTRUCTIVE


def test_preview_and_summary_say_what_would_go(ctx: ToolContext, root: Path) -> None:
    (root / "dist").mkdir()
    (root / "dist" / "a.whl").write_text("w")
    tool = Delete()
    assert (
        tool.preview(ctx, {"path": "dist"}) == "the directory dist (1 file(s), 0 subdirectory(ies))"
    )
    assert tool.preview(ctx, {"path": "nope"}) is None
    assert tool.preview(ctx, {"path": "."}) is None
    assert tool.summary({"path": "dist", "recursive": True}) == "Delete dist (recursive)"
    assert tool.summary({"path": "a.txt"}) == "Delete a.txt"
    assert (root / "dist" / "a.whl").exists()
