"""Read against real files: numbering, windows, caps and the files it must refuse."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.read import Read


async def read(ctx: ToolContext, **args: Any) -> ToolResult:
    return await Read().run(ctx, args)


def write_lines(path: Path, count: int, width: int = 0) -> None:
    path.write_text("".join(f"line {n}{'x' * width}\n" for n in range(1, count + 1)))


async def test_lines_are_numbered(ctx: ToolContext, root: Path) -> None:
    (root / "app.py").write_text("first\n  second\n\nfourth\n")
    result = await read(ctx, path="app.py")
    assert result.ok
    assert result.output == "     1\tfirst\n     2\t  second\n     3\t\n     4\tfourth"


async def test_offset_and_limit_select_a_window_with_a_note(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "f.txt", 10)
    result = await read(ctx, path="f.txt", offset=3, limit=2)
    lines = result.output.splitlines()
    assert lines[:2] == ["     3\tline 3", "     4\tline 4"]
    assert "Showing lines 3-4 of 10" in result.output
    assert "offset=5" in result.output


async def test_numeric_strings_are_accepted_for_offset(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "f.txt", 5)
    result = await read(ctx, path="f.txt", offset="5")
    assert result.output == "     5\tline 5"


@pytest.mark.parametrize(("args", "message"), [
    ({"offset": "abc"}, "'offset' must be an integer"),
    ({"offset": 0}, "'offset' must be at least 1"),
    ({"limit": True}, "'limit' must be an integer"),
])  # fmt: skip
async def test_bad_window_arguments_are_refused(
    ctx: ToolContext, root: Path, args: dict[str, Any], message: str
) -> None:
    write_lines(root / "f.txt", 5)
    with pytest.raises(ToolError, match=message):
        await read(ctx, path="f.txt", **args)


async def test_offset_past_the_end_says_how_long_the_file_is(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "f.txt", 3)
    with pytest.raises(ToolError, match="has 3 lines; offset 9 is past the end"):
        await read(ctx, path="f.txt", offset=9)


async def test_long_file_is_capped_at_2000_lines_with_how_to_continue(
    ctx: ToolContext, root: Path
) -> None:
    write_lines(root / "big.txt", 2500)
    ctx.context_window = 100_000  # factor 1: the base caps apply
    result = await read(ctx, path="big.txt")
    numbered = [line for line in result.output.splitlines() if "\t" in line]
    assert len(numbered) == 2000
    assert numbered[-1] == "  2000\tline 2000"
    assert "Showing lines 1-2000 of 2500. Use offset=2001" in result.output


async def test_cap_grows_with_the_context_window(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "big.txt", 2500)
    ctx.context_window = 400_000
    result = await read(ctx, path="big.txt")
    assert "  2500\tline 2500" in result.output
    assert "Showing" not in result.output


async def test_output_is_capped_by_bytes(ctx: ToolContext, root: Path) -> None:
    write_lines(root / "wide.txt", 500, width=1000)
    ctx.context_window = 100_000
    result = await read(ctx, path="wide.txt")
    assert 90_000 < len(result.output) < 110_000
    assert "of 500. Use offset=" in result.output


async def test_one_huge_line_is_cut_with_a_note(ctx: ToolContext, root: Path) -> None:
    (root / "min.js").write_text("x" * 300_000 + "\nsecond\n")
    ctx.context_window = 100_000
    result = await read(ctx, path="min.js")
    assert len(result.output) < 110_000
    assert "Line 1 is longer than the output limit" in result.output
    assert "Use offset=2" in result.output


async def test_binary_file_is_refused_with_a_note(ctx: ToolContext, root: Path) -> None:
    (root / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ToolError, match=r"img\.png is a binary file"):
        await read(ctx, path="img.png")


async def test_non_utf8_text_is_read_with_replacement(ctx: ToolContext, root: Path) -> None:
    (root / "latin.txt").write_bytes(b"caf\xe9 au lait\nplain\n")
    result = await read(ctx, path="latin.txt")
    assert result.output.splitlines()[0] == "     1\tcaf\ufffd au lait"


async def test_crlf_line_endings_are_not_shown(ctx: ToolContext, root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    result = await read(ctx, path="win.txt")
    assert result.output == "     1\tone\n     2\ttwo"


async def test_empty_file_says_so(ctx: ToolContext, root: Path) -> None:
    (root / "empty.txt").write_bytes(b"")
    result = await read(ctx, path="empty.txt")
    assert result.output == "empty.txt is empty."


async def test_missing_file(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match=r"^File not found: nope\.txt$"):
        await read(ctx, path="nope.txt")


async def test_directory_suggests_list(ctx: ToolContext, root: Path) -> None:
    (root / "src").mkdir()
    with pytest.raises(ToolError, match="src is a directory; use List"):
        await read(ctx, path="src")


async def test_fifo_is_refused_instead_of_blocking(ctx: ToolContext, root: Path) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="pipe is not a regular file"):
        await read(ctx, path="pipe")


async def test_outside_files_are_refused(ctx: ToolContext, root: Path, outside: Path) -> None:
    (root / "link").symlink_to(outside / "secret.txt")
    for raw in ["../outside/secret.txt", str(outside / "secret.txt"), "link"]:
        with pytest.raises(ToolError, match="outside the project"):
            await read(ctx, path=raw)


@pytest.mark.parametrize("args", [{}, {"path": ""}, {"path": 42}])
async def test_missing_or_bad_path_argument(ctx: ToolContext, args: dict[str, Any]) -> None:
    with pytest.raises(ToolError, match="path"):
        await Read().run(ctx, args)


def test_read_is_read_only_and_summarised() -> None:
    assert Read().effect({"path": "x"}) is Effect.READ_ONLY
    assert Read().summary({"path": "src/app.py"}) == "Read src/app.py"
