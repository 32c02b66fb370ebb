"""MemoryRead and MemoryWrite on real files: KODA.md and the user's AGENTS.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from koda.engine.instructions import load_instructions
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.memory import MemoryRead, MemoryWrite, memory_entries, with_entry


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"  # not made yet: the first user memory creates it


async def remember(ctx: ToolContext, user_dir: Path, **args: Any) -> ToolResult:
    return await MemoryWrite(user_dir).run(ctx, args)


async def recall(ctx: ToolContext, user_dir: Path) -> str:
    result = await MemoryRead(user_dir).run(ctx, {})
    assert result.ok
    return result.output


async def test_first_project_memory_creates_koda_md(
    ctx: ToolContext, root: Path, user_dir: Path, tracker: Any
) -> None:
    result = await remember(ctx, user_dir, content="Run tests with `make test`.")
    assert result.output == "Remembered in KODA.md under ## Memory: Run tests with `make test`."
    assert (root / "KODA.md").read_bytes() == b"## Memory\n\n- Run tests with `make test`.\n"
    # Koda made the file, so the session owns it (deleting it later needs no approval).
    assert tracker.created == [(root / "KODA.md").resolve()]
    await remember(ctx, user_dir, content="Use tabs in Makefiles.")
    assert (root / "KODA.md").read_text() == (
        "## Memory\n\n- Run tests with `make test`.\n- Use tabs in Makefiles.\n"
    )
    assert len(tracker.created) == 1


async def test_entry_goes_at_the_end_of_the_memory_section(
    ctx: ToolContext, root: Path, user_dir: Path, tracker: Any
) -> None:
    original = (
        "# Project notes\n\nIntro.\n\n## Memory\n\n- old fact\n\n"
        "### Detail kept in the section\ntext\n\n## Style\n\n- tabs\n"
    )
    (root / "KODA.md").write_text(original)
    await remember(ctx, user_dir, content="new fact")
    assert (root / "KODA.md").read_text() == original.replace(
        "text\n\n## Style", "text\n- new fact\n\n## Style"
    )
    assert tracker.created == []


async def test_a_file_without_the_section_gets_one_at_the_end(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    (root / "KODA.md").write_text("# Koda\nUse pytest.")  # no final newline
    await remember(ctx, user_dir, content="fact")
    assert (root / "KODA.md").read_text() == "# Koda\nUse pytest.\n\n## Memory\n\n- fact\n"


async def test_crlf_file_keeps_its_bytes_and_line_ends(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    original = b"\xef\xbb\xbf# T\r\n\r\n## memory\r\n- caf\xc3\xa9\r\n"
    (root / "KODA.md").write_bytes(original)
    await remember(ctx, user_dir, content="second")
    assert (root / "KODA.md").read_bytes() == original + b"- second\r\n"


async def test_empty_section_heading_at_end_of_file(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    (root / "KODA.md").write_text("## Memory")
    await remember(ctx, user_dir, content="x")
    assert (root / "KODA.md").read_text() == "## Memory\n\n- x\n"


async def test_content_becomes_one_bullet_and_duplicates_are_skipped(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    await remember(ctx, user_dir, content="- The API\n  needs   a token.\n")
    assert memory_entries((root / "KODA.md").read_text()) == ["- The API needs a token."]
    before = (root / "KODA.md").read_bytes()
    result = await remember(ctx, user_dir, content="the api needs a TOKEN.")
    assert result.output == "Already remembered in KODA.md: the api needs a TOKEN."
    assert (root / "KODA.md").read_bytes() == before


async def test_user_scope_writes_the_users_agents_md(
    ctx: ToolContext, root: Path, user_dir: Path, tracker: Any
) -> None:
    result = await remember(ctx, user_dir, content="Prefers short answers.", scope="user")
    assert result.output == (
        "Remembered in your AGENTS.md in Koda's config folder under ## Memory: "
        "Prefers short answers."
    )
    assert (user_dir / "AGENTS.md").read_text() == "## Memory\n\n- Prefers short answers.\n"
    assert not (root / "KODA.md").exists()
    assert tracker.created == []  # not a project file
    await remember(ctx, user_dir, content="Uses fish.", scope="GLOBAL")  # Koda's old name
    assert "- Uses fish." in (user_dir / "AGENTS.md").read_text()


async def test_user_file_linked_to_dotfiles_is_written_through(
    ctx: ToolContext, user_dir: Path, outside: Path
) -> None:
    dotfile = outside / "AGENTS.md"
    dotfile.write_text("# Mine\n")
    user_dir.mkdir()
    (user_dir / "AGENTS.md").symlink_to(dotfile)
    await remember(ctx, user_dir, content="kept", scope="user")
    assert (user_dir / "AGENTS.md").is_symlink()
    assert dotfile.read_text() == "# Mine\n\n## Memory\n\n- kept\n"


async def test_default_user_file_is_in_the_config_folder(
    ctx: ToolContext, private_koda_home: Path
) -> None:
    await MemoryWrite().run(ctx, {"content": "home fact", "scope": "user"})
    assert (private_koda_home / "AGENTS.md").read_text() == "## Memory\n\n- home fact\n"
    assert "- home fact" in (await MemoryRead().run(ctx, {})).output


async def test_project_memory_linking_outside_is_refused(
    ctx: ToolContext, root: Path, user_dir: Path, outside: Path
) -> None:
    (root / "KODA.md").symlink_to(outside / "secret.txt")
    with pytest.raises(ToolError, match="outside the project"):
        await remember(ctx, user_dir, content="x")
    with pytest.raises(ToolError, match="outside the project"):
        await recall(ctx, user_dir)
    assert (outside / "secret.txt").read_text() == "top secret\n"


async def test_files_koda_should_not_rewrite_are_refused(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    (root / "KODA.md").write_bytes(b"## Memory\n- caf\xe9\n")
    with pytest.raises(ToolError, match="not UTF-8 text"):
        await remember(ctx, user_dir, content="x")
    assert (root / "KODA.md").read_bytes() == b"## Memory\n- caf\xe9\n"
    (root / "KODA.md").unlink()
    (root / "KODA.md").write_bytes(b"x" * (1024 * 1024 + 1))
    with pytest.raises(ToolError, match="larger than 1 MB"):
        await remember(ctx, user_dir, content="x")
    (root / "KODA.md").unlink()
    (root / "KODA.md").mkdir()
    with pytest.raises(ToolError, match="not a regular file"):
        await remember(ctx, user_dir, content="x")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({}, "Missing required argument 'content'"),
        ({"content": "   \n"}, "'content' must not be empty"),
        ({"content": "- "}, "'content' must not be empty"),
        ({"content": 42}, "'content' must be a string"),
        ({"content": "x", "scope": "team"}, "'scope' must be 'project' or 'user'"),
        ({"content": "x", "scope": ["user"]}, "'scope' must be a string"),
        ({"content": "y" * 1001}, "memory keeps short facts"),
    ],
)
async def test_bad_arguments(
    ctx: ToolContext, root: Path, user_dir: Path, args: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ToolError, match=problem):
        await MemoryWrite(user_dir).run(ctx, args)
    assert not (root / "KODA.md").exists()


async def test_read_shows_only_the_memory_sections(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    assert await recall(ctx, user_dir) == (
        "Project memory (KODA.md, ## Memory):\n(nothing remembered yet)\n\n"
        "User memory (your AGENTS.md in Koda's config folder, ## Memory):\n"
        "(nothing remembered yet)"
    )
    (root / "KODA.md").write_text("# Instructions\nBe nice.\n## Memory\n\n- a\n- b\n\n## Other\n")
    await remember(ctx, user_dir, content="u", scope="user")
    output = await recall(ctx, user_dir)
    assert output == (
        "Project memory (KODA.md, ## Memory):\n- a\n- b\n\n"
        "User memory (your AGENTS.md in Koda's config folder, ## Memory):\n- u"
    )


async def test_read_caps_its_output(ctx: ToolContext, root: Path, user_dir: Path) -> None:
    (root / "KODA.md").write_text("## Memory\n" + "- fact\n" * 10_000)
    ctx.context_window = 100_000
    output = await recall(ctx, user_dir)
    assert len(output) < 20_100 and output.endswith("[... cut at 20000 characters]")


def test_effects_and_summary(user_dir: Path) -> None:
    write = MemoryWrite(user_dir)
    # It edits a file that steers later sessions, in either scope: never read-only.
    assert write.effect({"content": "x"}) == Effect.LOCAL_MUTATION
    assert write.effect({"content": "x", "scope": "user"}) == Effect.LOCAL_MUTATION
    assert MemoryRead(user_dir).effect({}) == Effect.READ_ONLY
    assert write.summary({"content": "fact\nmore", "scope": "user"}) == "MemoryWrite (user): fact…"
    assert write.summary({"content": "x", "scope": 3}) == "MemoryWrite (project): x"


def test_preview_names_the_file(ctx: ToolContext, user_dir: Path) -> None:
    write = MemoryWrite(user_dir)
    assert write.preview(ctx, {"content": "a\nb"}) == "Add to KODA.md under ## Memory:\n- a b"
    assert write.preview(ctx, {"content": ""}) is None


def test_with_entry_on_an_empty_text() -> None:
    assert with_entry("", "x") == "## Memory\n\n- x\n"
    assert with_entry("\n\n", "x") == "## Memory\n\n- x\n"


async def test_memory_reaches_the_next_sessions_prompt(
    ctx: ToolContext, root: Path, user_dir: Path
) -> None:
    await remember(ctx, user_dir, content="project fact")
    await remember(ctx, user_dir, content="user fact", scope="user")
    prompt = load_instructions(root, user_dir)
    assert prompt.index("## AGENTS.md (user, all projects)") < prompt.index("- user fact")
    assert prompt.index("## KODA.md (project)") < prompt.index("- project fact")
