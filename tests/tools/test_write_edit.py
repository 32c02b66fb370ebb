"""Write and Edit on real files: atomic replacement, tracking, line endings, helpful failures."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.edit import Edit
from koda.tools.write import Write


async def write(ctx: ToolContext, **args: Any) -> ToolResult:
    return await Write().run(ctx, args)


async def edit(ctx: ToolContext, **args: Any) -> ToolResult:
    return await Edit().run(ctx, args)


# Write


async def test_write_creates_parents_and_records_the_new_file(
    ctx: ToolContext, root: Path, tracker: Any
) -> None:
    result = await write(ctx, path="a/b/new.txt", content="héllo\n")
    assert result.ok
    assert result.output == "Created a/b/new.txt (7 bytes)"
    assert (root / "a/b/new.txt").read_text(encoding="utf-8") == "héllo\n"
    assert tracker.created == [(root / "a/b/new.txt").resolve()]


async def test_overwrite_is_reported_and_not_recorded_as_created(
    ctx: ToolContext, root: Path, tracker: Any
) -> None:
    (root / "old.txt").write_text("before\n")
    result = await write(ctx, path="old.txt", content="after\n")
    assert result.output == "Overwrote old.txt (6 bytes)"
    assert (root / "old.txt").read_text() == "after\n"
    assert tracker.created == []


async def test_write_keeps_mode_and_leaves_no_temp_files(ctx: ToolContext, root: Path) -> None:
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho old\n")
    script.chmod(0o755)
    await write(ctx, path="run.sh", content="#!/bin/sh\necho new\n")
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert sorted(os.listdir(root)) == ["run.sh"]


async def test_write_empty_content_is_allowed(ctx: ToolContext, root: Path) -> None:
    result = await write(ctx, path="empty.txt", content="")
    assert result.output == "Created empty.txt (0 bytes)"
    assert (root / "empty.txt").read_bytes() == b""


async def test_write_writes_content_byte_for_byte(ctx: ToolContext, root: Path) -> None:
    await write(ctx, path="crlf.txt", content="a\r\nb\r\n")
    assert (root / "crlf.txt").read_bytes() == b"a\r\nb\r\n"


@pytest.mark.parametrize(("args", "message"), [
    ({"content": "x"}, "Missing required argument 'path'"),
    ({"path": "a.txt"}, "Missing required argument 'content'"),
    ({"path": "a.txt", "content": 12}, "'content' must be a string"),
    ({"path": "", "content": "x"}, "'path' must not be empty"),
])  # fmt: skip
async def test_write_argument_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        await Write().run(ctx, args)


async def test_write_refuses_directories_and_outside_paths(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "src").mkdir()
    with pytest.raises(ToolError, match="src is a directory"):
        await write(ctx, path="src", content="x")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    for raw in ["../outside/new.txt", "escape/secret.txt", str(outside / "x.txt")]:
        with pytest.raises(ToolError, match="outside the project"):
            await write(ctx, path=raw, content="pwned")
    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert sorted(os.listdir(outside)) == ["secret.txt"]


async def test_write_under_a_file_is_a_tool_error_not_a_crash(ctx: ToolContext, root: Path) -> None:
    (root / "plain").write_text("x")
    with pytest.raises(ToolError, match=r"plain/child\.txt"):
        await write(ctx, path="plain/child.txt", content="y")


async def test_write_unencodable_text_is_a_tool_error(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="Could not convert"):
        await write(ctx, path="bad.txt", content="lone \udc80 surrogate")


def test_write_preview_is_a_diff(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("one\ntwo\n")
    preview = Write().preview(ctx, {"path": "f.txt", "content": "one\nTWO\n"})
    assert preview is not None
    assert "--- a/f.txt" in preview and "+++ b/f.txt" in preview
    assert "-two" in preview and "+TWO" in preview
    assert (root / "f.txt").read_text() == "one\ntwo\n"


def test_write_preview_of_new_file_and_cap(ctx: ToolContext) -> None:
    content = "".join(f"row {n}\n" for n in range(100))
    preview = Write().preview(ctx, {"path": "new.txt", "content": content})
    assert preview is not None
    lines = preview.splitlines()
    assert lines[0] == "--- /dev/null"
    assert len(lines) == 41
    assert lines[-1].startswith("[... ") and lines[-1].endswith(" more diff lines]")


def test_write_preview_is_none_for_bad_calls(ctx: ToolContext) -> None:
    assert Write().preview(ctx, {"path": "../x", "content": "x"}) is None
    assert Write().preview(ctx, {"path": "x"}) is None


# Edit


async def test_edit_replaces_a_unique_match(ctx: ToolContext, root: Path) -> None:
    (root / "app.py").write_text("def f():\n    return 1\n")
    result = await edit(ctx, path="app.py", old_string="return 1", new_string="return 2")
    assert result.ok
    assert result.output.startswith("Edited app.py: replaced 1 occurrence(s)\n")
    assert "-    return 1" in result.output and "+    return 2" in result.output
    assert (root / "app.py").read_text() == "def f():\n    return 2\n"


async def test_ambiguous_edit_lists_every_matching_line(ctx: ToolContext, root: Path) -> None:
    text = "x = 1\nfoo()\nx = 2\n\nfoo()\ny = 3\n\n\nfoo()\n"
    (root / "m.py").write_text(text)
    with pytest.raises(ToolError) as info:
        await edit(ctx, path="m.py", old_string="foo()", new_string="bar()")
    assert "occurs 3 times" in str(info.value)
    assert "lines 2, 5, 9" in str(info.value)
    assert "replace_all" in str(info.value)
    assert (root / "m.py").read_text() == text


async def test_replace_all_replaces_every_match(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text("foo()\nfoo()\nfoo()\n")
    result = await edit(ctx, path="m.py", old_string="foo", new_string="bar", replace_all="true")
    assert "replaced 3 occurrence(s)" in result.output
    assert (root / "m.py").read_text() == "bar()\nbar()\nbar()\n"


async def test_not_found_shows_the_closest_line_with_its_number(
    ctx: ToolContext, root: Path
) -> None:
    lines = [f"value_{n} = {n}" for n in range(1, 7)] + ["    return total_sum", "end = 0"]
    (root / "calc.py").write_text("\n".join(lines) + "\n")
    with pytest.raises(ToolError) as info:
        await edit(ctx, path="calc.py", old_string="  return total_summ\n", new_string="x")
    message = str(info.value)
    assert message.startswith("old_string was not found in calc.py.")
    assert "closest match is at line 7" in message
    assert "     7\t    return total_sum" in message


async def test_not_found_multiline_window_starts_at_the_block(ctx: ToolContext, root: Path) -> None:
    (root / "b.py").write_text("a\nb\nif ready:\n    go(1)\n    stop()\nz\n")
    old = "\nif ready:\n    go(2)\n    stop()"
    with pytest.raises(ToolError) as info:
        await edit(ctx, path="b.py", old_string=old, new_string="pass")
    message = str(info.value)
    assert "     2\tb\n     3\tif ready:\n     4\t    go(1)\n     5\t    stop()" in message


async def test_not_found_without_anything_similar(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("alpha\nbeta\n")
    with pytest.raises(ToolError, match="No similar lines were found"):
        await edit(ctx, path="f.txt", old_string="zzzzzzzzzz qqqq", new_string="x")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("", "x", "old_string is empty"),
    ("same", "same", "identical"),
])  # fmt: skip
async def test_pointless_edits_are_refused(
    ctx: ToolContext, root: Path, old: str, new: str, message: str
) -> None:
    (root / "f.txt").write_text("same\n")
    with pytest.raises(ToolError, match=message):
        await edit(ctx, path="f.txt", old_string=old, new_string=new)


async def test_edit_argument_errors(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("a\n")
    with pytest.raises(ToolError, match="Missing required argument 'new_string'"):
        await Edit().run(ctx, {"path": "f.txt", "old_string": "a"})
    with pytest.raises(ToolError, match="'replace_all' must be a boolean"):
        await edit(ctx, path="f.txt", old_string="a", new_string="b", replace_all="sometimes")
    with pytest.raises(ToolError, match="'old_string' must be a string"):
        await edit(ctx, path="f.txt", old_string=["a"], new_string="b")


async def test_crlf_file_keeps_crlf_when_model_sends_lf(ctx: ToolContext, root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await edit(ctx, path="win.txt", old_string="one\ntwo\n", new_string="1\n2\n2.5\n")
    assert (root / "win.txt").read_bytes() == b"1\r\n2\r\n2.5\r\nthree\r\n"


async def test_crlf_file_single_line_edit_adding_lines_uses_crlf(
    ctx: ToolContext, root: Path
) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    await edit(ctx, path="win.txt", old_string="two", new_string="two\nand more")
    assert (root / "win.txt").read_bytes() == b"one\r\ntwo\r\nand more\r\n"


async def test_lf_file_stays_lf_when_model_sends_crlf(ctx: ToolContext, root: Path) -> None:
    (root / "unix.txt").write_bytes(b"one\ntwo\n")
    await edit(ctx, path="unix.txt", old_string="one\r\ntwo", new_string="uno\r\ndos")
    assert (root / "unix.txt").read_bytes() == b"uno\ndos\n"


async def test_non_utf8_bytes_elsewhere_survive_an_edit(ctx: ToolContext, root: Path) -> None:
    (root / "latin.txt").write_bytes(b"caf\xe9\nold line\n\xff\xfe end\n")
    await edit(ctx, path="latin.txt", old_string="old line", new_string="new line")
    assert (root / "latin.txt").read_bytes() == b"caf\xe9\nnew line\n\xff\xfe end\n"


async def test_edit_refuses_binary_missing_and_outside(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "blob.bin").write_bytes(b"abc\x00def")
    with pytest.raises(ToolError, match="binary"):
        await edit(ctx, path="blob.bin", old_string="abc", new_string="x")
    with pytest.raises(ToolError, match=r"^File not found: ghost\.py$"):
        await edit(ctx, path="ghost.py", old_string="a", new_string="b")
    (root / "pkg").mkdir()
    with pytest.raises(ToolError, match="pkg is not a regular file"):
        await edit(ctx, path="pkg", old_string="a", new_string="b")
    (root / "link.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(ToolError, match="outside the project"):
        await edit(ctx, path="link.txt", old_string="top", new_string="no")
    assert (outside / "secret.txt").read_text() == "top secret\n"


def test_edit_preview_is_a_diff_and_changes_nothing(ctx: ToolContext, root: Path) -> None:
    (root / "f.py").write_text("a = 1\nb = 2\n")
    preview = Edit().preview(ctx, {"path": "f.py", "old_string": "b = 2", "new_string": "b = 3"})
    assert preview is not None
    assert "-b = 2" in preview and "+b = 3" in preview
    assert (root / "f.py").read_text() == "a = 1\nb = 2\n"


def test_edit_preview_is_none_when_the_edit_would_fail(ctx: ToolContext, root: Path) -> None:
    (root / "f.py").write_text("x\nx\n")
    assert Edit().preview(ctx, {"path": "f.py", "old_string": "x", "new_string": "y"}) is None
    assert Edit().preview(ctx, {"path": "f.py", "old_string": "q", "new_string": "y"}) is None


def test_effects_and_summaries() -> None:
    assert Write().effect({}) is Effect.LOCAL_MUTATION
    assert Edit().effect({}) is Effect.LOCAL_MUTATION
    assert Write().summary({"path": "a.txt"}) == "Write a.txt"
    assert Edit().summary({"path": "b.txt"}) == "Edit b.txt"
