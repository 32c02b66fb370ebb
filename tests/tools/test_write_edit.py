"""Write and Edit on real files: atomic replacement, tracking, read-before-change, line endings,
raced symlink swaps, placeholders and helpful failures."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from koda.tools import write as write_module
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.edit import Edit
from koda.tools.read import Read
from koda.tools.write import Write, unified_diff


async def write(ctx: ToolContext, **args: Any) -> ToolResult:
    return await Write().run(ctx, args)


async def edit(ctx: ToolContext, **args: Any) -> ToolResult:
    return await Edit().run(ctx, args)


async def seen(ctx: ToolContext, path: str) -> None:
    """The model reads `path` with the real Read tool, as it must before changing it."""
    await Read().run(ctx, {"path": path})


def put(root: Path, name: str, data: bytes | str) -> None:
    target = root / name
    if isinstance(data, str):
        target.write_text(data)
    else:
        target.write_bytes(data)


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
    await seen(ctx, "old.txt")
    result = await write(ctx, path="old.txt", content="after\n")
    assert result.output == "Overwrote old.txt (6 bytes)"
    assert (root / "old.txt").read_text() == "after\n"
    assert tracker.created == []


async def test_write_keeps_mode_and_leaves_no_temp_files(ctx: ToolContext, root: Path) -> None:
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho old\n")
    script.chmod(0o755)
    await seen(ctx, "run.sh")
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


async def test_write_preview_is_a_diff(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("one\ntwo\n")
    await seen(ctx, "f.txt")
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
    await seen(ctx, "app.py")
    result = await edit(ctx, path="app.py", old_string="return 1", new_string="return 2")
    assert result.ok
    assert result.output.startswith("Edited app.py: replaced 1 occurrence(s)\n")
    assert "-    return 1" in result.output and "+    return 2" in result.output
    assert (root / "app.py").read_text() == "def f():\n    return 2\n"


async def test_ambiguous_edit_lists_every_matching_line(ctx: ToolContext, root: Path) -> None:
    text = "x = 1\nfoo()\nx = 2\n\nfoo()\ny = 3\n\n\nfoo()\n"
    (root / "m.py").write_text(text)
    await seen(ctx, "m.py")
    with pytest.raises(ToolError) as info:
        await edit(ctx, path="m.py", old_string="foo()", new_string="bar()")
    assert "occurs 3 times" in str(info.value)
    assert "lines 2, 5, 9" in str(info.value)
    assert "replace_all" in str(info.value)
    assert (root / "m.py").read_text() == text


async def test_replace_all_replaces_every_match(ctx: ToolContext, root: Path) -> None:
    (root / "m.py").write_text("foo()\nfoo()\nfoo()\n")
    await seen(ctx, "m.py")
    result = await edit(ctx, path="m.py", old_string="foo", new_string="bar", replace_all="true")
    assert "replaced 3 occurrence(s)" in result.output
    assert (root / "m.py").read_text() == "bar()\nbar()\nbar()\n"


async def test_not_found_shows_the_closest_line_with_its_number(
    ctx: ToolContext, root: Path
) -> None:
    lines = [f"value_{n} = {n}" for n in range(1, 7)] + ["    return total_sum", "end = 0"]
    (root / "calc.py").write_text("\n".join(lines) + "\n")
    await seen(ctx, "calc.py")
    with pytest.raises(ToolError) as info:
        await edit(ctx, path="calc.py", old_string="  return total_summ\n", new_string="x")
    message = str(info.value)
    assert message.startswith("old_string was not found in calc.py.")
    assert "closest match is at line 7" in message
    assert "     7\t    return total_sum" in message


async def test_not_found_multiline_window_starts_at_the_block(ctx: ToolContext, root: Path) -> None:
    (root / "b.py").write_text("a\nb\nif ready:\n    go(1)\n    stop()\nz\n")
    await seen(ctx, "b.py")
    old = "\nif ready:\n    go(2)\n    stop()"
    with pytest.raises(ToolError) as info:
        await edit(ctx, path="b.py", old_string=old, new_string="pass")
    message = str(info.value)
    assert "     2\tb\n     3\tif ready:\n     4\t    go(1)\n     5\t    stop()" in message


async def test_not_found_without_anything_similar(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("alpha\nbeta\n")
    await seen(ctx, "f.txt")
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
    await seen(ctx, "f.txt")
    with pytest.raises(ToolError, match=message):
        await edit(ctx, path="f.txt", old_string=old, new_string=new)


async def test_edit_argument_errors(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("a\n")
    await seen(ctx, "f.txt")
    with pytest.raises(ToolError, match="Missing required argument 'new_string'"):
        await Edit().run(ctx, {"path": "f.txt", "old_string": "a"})
    with pytest.raises(ToolError, match="'replace_all' must be a boolean"):
        await edit(ctx, path="f.txt", old_string="a", new_string="b", replace_all="sometimes")
    with pytest.raises(ToolError, match="'old_string' must be a string"):
        await edit(ctx, path="f.txt", old_string=["a"], new_string="b")


async def test_crlf_file_keeps_crlf_when_model_sends_lf(ctx: ToolContext, root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await seen(ctx, "win.txt")
    await edit(ctx, path="win.txt", old_string="one\ntwo\n", new_string="1\n2\n2.5\n")
    assert (root / "win.txt").read_bytes() == b"1\r\n2\r\n2.5\r\nthree\r\n"


async def test_crlf_file_single_line_edit_adding_lines_uses_crlf(
    ctx: ToolContext, root: Path
) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    await seen(ctx, "win.txt")
    await edit(ctx, path="win.txt", old_string="two", new_string="two\nand more")
    assert (root / "win.txt").read_bytes() == b"one\r\ntwo\r\nand more\r\n"


async def test_lf_file_stays_lf_when_model_sends_crlf(ctx: ToolContext, root: Path) -> None:
    (root / "unix.txt").write_bytes(b"one\ntwo\n")
    await seen(ctx, "unix.txt")
    await edit(ctx, path="unix.txt", old_string="one\r\ntwo", new_string="uno\r\ndos")
    assert (root / "unix.txt").read_bytes() == b"uno\ndos\n"


async def test_non_utf8_bytes_elsewhere_survive_an_edit(ctx: ToolContext, root: Path) -> None:
    (root / "latin.txt").write_bytes(b"caf\xe9\nold line\n\xff\xfe end\n")
    await seen(ctx, "latin.txt")
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


async def test_edit_preview_is_a_diff_and_changes_nothing(ctx: ToolContext, root: Path) -> None:
    (root / "f.py").write_text("a = 1\nb = 2\n")
    await seen(ctx, "f.py")
    preview = Edit().preview(ctx, {"path": "f.py", "old_string": "b = 2", "new_string": "b = 3"})
    assert preview is not None
    assert "-b = 2" in preview and "+b = 3" in preview
    assert (root / "f.py").read_text() == "a = 1\nb = 2\n"


async def test_edit_preview_is_none_when_the_edit_would_fail(ctx: ToolContext, root: Path) -> None:
    (root / "f.py").write_text("x\nx\n")
    await seen(ctx, "f.py")
    assert Edit().preview(ctx, {"path": "f.py", "old_string": "x", "new_string": "y"}) is None
    assert Edit().preview(ctx, {"path": "f.py", "old_string": "q", "new_string": "y"}) is None


def test_effects_and_summaries() -> None:
    assert Write().effect({}) is Effect.LOCAL_MUTATION
    assert Edit().effect({}) is Effect.LOCAL_MUTATION
    assert Write().summary({"path": "a.txt"}) == "Write a.txt"
    assert Edit().summary({"path": "b.txt"}) == "Edit b.txt"


# Read before change


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_write_refuses_to_overwrite_a_file_never_read(ctx: ToolContext, root: Path) -> None:
    put(root, "notes.md", "mine\n")
    with pytest.raises(ToolError, match=r"notes\.md already exists and you have not read it"):
        await write(ctx, path="notes.md", content="yours\n")
    assert (root / "notes.md").read_text() == "mine\n"
    assert Write().preview(ctx, {"path": "notes.md", "content": "yours\n"}) is None


async def test_overwrite_true_replaces_a_file_never_read(ctx: ToolContext, root: Path) -> None:
    put(root, "notes.md", "mine\n")
    result = await write(ctx, path="notes.md", content="yours\n", overwrite=True)
    assert result.output == "Overwrote notes.md (6 bytes)"
    assert (root / "notes.md").read_text() == "yours\n"


async def test_write_refuses_a_file_changed_since_it_was_read(ctx: ToolContext, root: Path) -> None:
    put(root, "cfg.toml", "a = 1\n")
    await seen(ctx, "cfg.toml")
    put(root, "cfg.toml", "a = 2\n")  # someone else changed it meanwhile
    with pytest.raises(ToolError, match=r"cfg\.toml has changed since you last read it"):
        await write(ctx, path="cfg.toml", content="a = 3\n")
    assert (root / "cfg.toml").read_text() == "a = 2\n"
    await write(ctx, path="cfg.toml", content="a = 3\n", overwrite="true")
    assert (root / "cfg.toml").read_text() == "a = 3\n"


async def test_after_write_the_file_counts_as_read(
    ctx: ToolContext, root: Path, tracker: Any
) -> None:
    await write(ctx, path="new.py", content="x = 1\n")
    key = (root / "new.py").resolve()
    assert tracker.reads[key] == sha(b"x = 1\n")
    await write(ctx, path="new.py", content="x = 2\n")  # no Read needed for its own file
    await edit(ctx, path="new.py", old_string="x = 2", new_string="x = 3")
    assert (root / "new.py").read_text() == "x = 3\n"


async def test_write_argument_overwrite_must_be_a_boolean(ctx: ToolContext, root: Path) -> None:
    with pytest.raises(ToolError, match="'overwrite' must be a boolean"):
        await write(ctx, path="a.txt", content="x", overwrite="yes please")


async def test_write_refuses_a_fifo_instead_of_blocking(ctx: ToolContext, root: Path) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(ToolError, match="pipe is not a regular file"):
        await write(ctx, path="pipe", content="x", overwrite=True)


async def test_edit_refuses_a_file_never_read(ctx: ToolContext, root: Path) -> None:
    put(root, "app.py", "x = 1\n")
    with pytest.raises(ToolError, match=r"Read app\.py before editing it"):
        await edit(ctx, path="app.py", old_string="x = 1", new_string="x = 2")
    assert (root / "app.py").read_text() == "x = 1\n"


async def test_edit_refuses_a_file_changed_since_it_was_read(ctx: ToolContext, root: Path) -> None:
    put(root, "app.py", "x = 1\ny = 1\n")
    await seen(ctx, "app.py")
    put(root, "app.py", "x = 1\ny = 2\n")
    with pytest.raises(ToolError, match=r"app\.py has changed since you last read it"):
        await edit(ctx, path="app.py", old_string="x = 1", new_string="x = 5")
    assert (root / "app.py").read_text() == "x = 1\ny = 2\n"
    await seen(ctx, "app.py")
    await edit(ctx, path="app.py", old_string="x = 1", new_string="x = 5")
    assert (root / "app.py").read_text() == "x = 5\ny = 2\n"


async def test_a_partial_read_is_enough_to_edit(ctx: ToolContext, root: Path) -> None:
    put(root, "big.txt", "".join(f"row {n}\n" for n in range(5000)))
    await Read().run(ctx, {"path": "big.txt", "offset": 100, "limit": 3})
    await edit(ctx, path="big.txt", old_string="row 101\n", new_string="row one-oh-one\n")
    assert "row one-oh-one\nrow 102\n" in (root / "big.txt").read_text()


async def test_follow_up_edits_need_no_new_read(ctx: ToolContext, root: Path, tracker: Any) -> None:
    put(root, "app.py", "a = 1\nb = 1\n")
    await seen(ctx, "app.py")
    await edit(ctx, path="app.py", old_string="a = 1", new_string="a = 2")
    await edit(ctx, path="app.py", old_string="b = 1", new_string="b = 2")
    data = (root / "app.py").read_bytes()
    assert data == b"a = 2\nb = 2\n"
    assert tracker.reads[(root / "app.py").resolve()] == sha(data)


# Several edits in one call


async def test_edits_apply_in_order(ctx: ToolContext, root: Path) -> None:
    put(root, "m.py", "def old():\n    return 1\n\nold()\n")
    await seen(ctx, "m.py")
    result = await edit(ctx, path="m.py", edits=[
        {"old_string": "def old():", "new_string": "def new():"},
        {"old_string": "old()", "new_string": "new()"},
        {"old_string": "new", "new_string": "fresh", "replace_all": True},  # sees edits 1-2
    ])  # fmt: skip
    assert (root / "m.py").read_text() == "def fresh():\n    return 1\n\nfresh()\n"
    assert result.output.startswith("Edited m.py: replaced 4 occurrence(s) in 3 edits\n")


async def test_edits_are_all_or_nothing(ctx: ToolContext, root: Path, tracker: Any) -> None:
    put(root, "m.py", "alpha\nbeta\ngamma\n")
    await seen(ctx, "m.py")
    recorded = dict(tracker.reads)
    with pytest.raises(ToolError) as info:
        await edit(ctx, path="m.py", edits=[
            {"old_string": "alpha", "new_string": "ALPHA"},
            {"old_string": "delta", "new_string": "DELTA"},
        ])  # fmt: skip
    message = str(info.value)
    assert message.startswith("Edit 2 of 2 failed, so no edit was made")
    assert "(line numbers count edits 1-1 as applied)" in message
    assert "old_string was not found in m.py" in message
    assert (root / "m.py").read_text() == "alpha\nbeta\ngamma\n"
    assert tracker.reads == recorded
    assert sorted(os.listdir(root)) == ["m.py"]


async def test_an_ambiguous_edit_among_several_names_all_its_lines(
    ctx: ToolContext, root: Path
) -> None:
    put(root, "m.py", "x\ny\nx\n")
    await seen(ctx, "m.py")
    with pytest.raises(
        ToolError, match=r"Edit 1 of 2 failed.*occurs 2 times in m\.py \(lines 1, 3\)"
    ):
        await edit(ctx, path="m.py", edits=[
            {"old_string": "x", "new_string": "z"}, {"old_string": "y", "new_string": "w"},
        ])  # fmt: skip


async def test_edits_sent_as_json_text_are_accepted(ctx: ToolContext, root: Path) -> None:
    put(root, "f.txt", "one\ntwo\n")
    await seen(ctx, "f.txt")
    edits = json.dumps(
        [{"old_string": "one", "new_string": "1"}, {"old_string": "two", "new_string": "2"}]
    )
    await edit(ctx, path="f.txt", edits=edits)
    assert (root / "f.txt").read_text() == "1\n2\n"


@pytest.mark.parametrize(("args", "message"), [
    ({"edits": [], "old_string": "", "new_string": ""}, "'edits' must be a non-empty list"),
    ({"edits": [], "old_string": "", "new_string": "x"}, "old_string is empty"),
    ({"edits": [{"old_string": "a", "new_string": "b"}], "old_string": "a", "new_string": "c"},
     "either old_string/new_string or edits, not both"),
    ({"edits": "not json"}, "'edits' must be a non-empty list"),
    ({"edits": {"old_string": "a"}}, "'edits' must be a non-empty list"),
    ({"edits": ["a"]}, r"edits\[1\] must be an object"),
    ({"edits": [{"old_string": "a", "new_string": "b"}, {"old_string": "a"}]},
     r"edits\[2\]: Missing required argument 'new_string'"),
    ({"edits": [{"old_string": "a", "new_string": 3}]}, r"edits\[1\]: .*'new_string' must be a"),
    ({"edits": [{"old_string": "a", "new_string": "b", "replace_all": "often"}]},
     r"edits\[1\]: .*'replace_all' must be a boolean"),
    ({}, "Missing required argument 'old_string'"),
])  # fmt: skip
async def test_bad_edits_arguments(
    ctx: ToolContext, root: Path, args: dict[str, Any], message: str
) -> None:
    put(root, "f.txt", "a\n")
    await seen(ctx, "f.txt")
    with pytest.raises(ToolError, match=message):
        await Edit().run(ctx, {"path": "f.txt", **args})
    assert (root / "f.txt").read_text() == "a\n"


def test_edit_schema_offers_both_forms_and_stays_small() -> None:
    schema = Edit().parameters
    assert schema["required"] == ["path"]
    assert {"old_string", "new_string", "replace_all", "edits"} <= set(schema["properties"])
    item = schema["properties"]["edits"]["items"]
    assert item["required"] == ["old_string", "new_string"]
    size = len(
        json.dumps({"name": "Edit", "description": Edit().description, "parameters": schema})
    )
    assert size < 950


# Placeholders


@pytest.mark.parametrize("placeholder", [
    "... rest of code",
    "// existing code ...",
    "# ... (unchanged)",
    "    // ... other methods ...",
    "# rest of the file unchanged",
    "<!-- ... existing content ... -->",
    "{/* ... existing JSX ... */}",
])  # fmt: skip
async def test_placeholders_in_new_string_are_rejected(
    ctx: ToolContext, root: Path, placeholder: str
) -> None:
    put(root, "app.js", "function a() {\n  one();\n  two();\n}\n")
    await seen(ctx, "app.js")
    new = f"function a() {{\n  zero();\n{placeholder}\n}}"
    with pytest.raises(ToolError, match="new_string contains the placeholder") as info:
        await edit(ctx, path="app.js", old_string="function a() {\n  one();\n  two();\n}",
                   new_string=new)  # fmt: skip
    assert placeholder.strip() in str(info.value)
    assert (root / "app.js").read_text() == "function a() {\n  one();\n  two();\n}\n"


async def test_a_placeholder_already_in_old_string_may_stay(ctx: ToolContext, root: Path) -> None:
    put(root, "doc.py", "def f():\n    # ... (unchanged)\n    pass\n")
    await seen(ctx, "doc.py")
    await edit(ctx, path="doc.py", old_string="def f():\n    # ... (unchanged)",
               new_string="def g():\n    # ... (unchanged)")  # fmt: skip
    assert (root / "doc.py").read_text() == "def g():\n    # ... (unchanged)\n    pass\n"


@pytest.mark.parametrize("code", [
    "    ...",  # a Python stub body
    "  return { ...rest }",
    "  ...props",
    'print("Loading existing config...")',
    "# Retry with the existing connection...",
    "// Other methods",
    "x = 1  # unchanged",
])  # fmt: skip
async def test_real_code_that_looks_similar_is_not_a_placeholder(
    ctx: ToolContext, root: Path, code: str
) -> None:
    put(root, "f.txt", "marker\n")
    await seen(ctx, "f.txt")
    await edit(ctx, path="f.txt", old_string="marker", new_string=code)
    assert (root / "f.txt").read_text() == code + "\n"


async def test_a_placeholder_in_one_of_several_edits_stops_them_all(
    ctx: ToolContext, root: Path
) -> None:
    put(root, "f.py", "a\nb\n")
    await seen(ctx, "f.py")
    with pytest.raises(ToolError, match=r"edits\[2\]: new_string contains the placeholder"):
        await edit(ctx, path="f.py", edits=[
            {"old_string": "a", "new_string": "A"},
            {"old_string": "b", "new_string": "# ... rest of code"},
        ])  # fmt: skip
    assert (root / "f.py").read_text() == "a\nb\n"


# Raced symlink swaps: a directory on the path becomes a link to outside after the check.


def swap_for_link(root: Path, outside: Path) -> None:
    (root / "sub").rename(root / "sub.old")
    (root / "sub").symlink_to(outside, target_is_directory=True)


async def test_a_swap_before_the_write_is_refused(
    ctx: ToolContext, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "sub").mkdir()
    real = write_module.resolve_in_project

    def resolve_then_swap(*args: Any, **kwargs: Any) -> Path:
        resolved = real(*args, **kwargs)
        swap_for_link(root, outside)
        return resolved

    monkeypatch.setattr(write_module, "resolve_in_project", resolve_then_swap)
    with pytest.raises(
        ToolError, match=r"'sub' was replaced by a symbolic link.*nothing was changed"
    ):
        await write(ctx, path="sub/new.txt", content="pwned")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert os.listdir(root / "sub.old") == []


async def test_a_swap_while_the_temp_file_is_written_is_refused(
    ctx: ToolContext, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "sub").mkdir()
    put(root, "sub/f.txt", "inside\n")
    await seen(ctx, "sub/f.txt")
    real = write_module._write_temp

    def write_then_swap(*args: Any) -> str:
        name = real(*args)
        swap_for_link(root, outside)
        return name

    monkeypatch.setattr(write_module, "_write_temp", write_then_swap)
    with pytest.raises(ToolError, match="moved or replaced while the tool ran"):
        await edit(ctx, path="sub/f.txt", old_string="inside", new_string="pwned")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert os.listdir(root / "sub.old") == ["f.txt"]  # and no temp file left behind
    assert (root / "sub.old" / "f.txt").read_text() == "inside\n"


async def test_a_swap_in_the_last_instant_still_writes_inside(
    ctx: ToolContext, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the last check only the rename is left, and it is relative to the directory that
    # was checked: the file lands there, never behind the new link.
    (root / "sub").mkdir()
    real = os.replace

    def swap_then_replace(*args: Any, **kwargs: Any) -> None:
        swap_for_link(root, outside)
        real(*args, **kwargs)

    monkeypatch.setattr(os, "replace", swap_then_replace)
    await write(ctx, path="sub/new.txt", content="data")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (root / "sub.old" / "new.txt").read_text() == "data"


async def test_a_file_swapped_for_a_link_is_replaced_not_followed(
    ctx: ToolContext, root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(root, "f.txt", "mine\n")
    await seen(ctx, "f.txt")
    real = write_module._write_temp

    def write_then_swap(*args: Any) -> str:
        name = real(*args)
        (root / "f.txt").unlink()
        (root / "f.txt").symlink_to(outside / "secret.txt")
        return name

    monkeypatch.setattr(write_module, "_write_temp", write_then_swap)
    await write(ctx, path="f.txt", content="new\n")
    assert (outside / "secret.txt").read_text() == "top secret\n"
    assert not (root / "f.txt").is_symlink()
    assert (root / "f.txt").read_text() == "new\n"


def test_diff_of_a_small_change_in_a_long_file_has_true_line_numbers() -> None:
    old = "".join(f"row {n}\n" for n in range(1, 20_001))
    new = old.replace("row 15000\n", "row 15000 changed\nrow 15000.5\n")
    lines = unified_diff(old, new, "big.txt").splitlines()
    assert lines[2] == "@@ -14997,7 +14997,8 @@"
    assert lines[3:6] == [" row 14997", " row 14998", " row 14999"]
    assert lines[6:9] == ["-row 15000", "+row 15000 changed", "+row 15000.5"]
    assert unified_diff(old, old, "big.txt") == "(no changes to big.txt)"
    head_change = unified_diff(old, "row 0\n" + old, "big.txt").splitlines()
    assert head_change[2:5] == ["@@ -1,3 +1,4 @@", "+row 0", " row 1"]
