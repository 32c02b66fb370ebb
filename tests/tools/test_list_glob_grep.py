"""List, Glob and Grep over a real tree with a .gitignore, build dirs and awkward files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.glob import Glob
from koda.tools.grep import Grep
from koda.tools.ignore import IgnoreRules
from koda.tools.listing import List

GITIGNORE = """\
# build output
*.log
!keep.log
out/
/secret.txt
docs/generated/
**/tmp_*
"""


@pytest.fixture
def tree(root: Path) -> Path:
    files = {
        ".gitignore": GITIGNORE,
        "README.md": "# Demo\nTODO: write docs\n",
        "secret.txt": "TODO hidden at root\n",
        "app.log": "TODO in a log\n",
        "keep.log": "TODO kept log\n",
        "src/main.py": "def main():\n    return helper()  # TODO tidy\n",
        "src/util/helper.py": "def helper():\n    return 42\n",
        "src/util/tmp_scratch.py": "TODO scratch\n",
        "src/out/gen.py": "TODO generated\n",
        "docs/secret.txt": "TODO not anchored, so not ignored\n",
        "docs/generated/api.md": "TODO generated docs\n",
        "node_modules/lib/index.js": "TODO vendored\n",
        ".git/config": "TODO git internals\n",
        "build/artifact.py": "TODO build\n",
        "pkg/__pycache__/m.cpython-311.pyc": "TODO cache\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


async def run(tool: Any, ctx: ToolContext, **args: Any) -> ToolResult:
    result: ToolResult = await tool.run(ctx, args)
    return result


# Ignore rules


@pytest.mark.parametrize(("rel", "is_dir", "ignored"), [
    ("app.log", False, True),
    ("deep/nested/x.log", False, True),
    ("keep.log", False, False),
    ("out", True, True),
    ("out", False, False),  # "out/" only matches directories
    ("src/out/gen.py", False, True),  # ignored through its parent
    ("secret.txt", False, True),
    ("docs/secret.txt", False, False),  # "/secret.txt" is anchored to the root
    ("docs/generated/api.md", False, True),
    ("generated/api.md", False, False),
    ("a/b/tmp_x.py", False, True),
    ("tmp_y", False, True),
    ("src/main.py", False, False),
])  # fmt: skip
def test_gitignore_rules(rel: str, is_dir: bool, ignored: bool) -> None:
    assert IgnoreRules.parse(GITIGNORE).is_ignored(rel, is_dir) is ignored


def test_negation_cannot_reinclude_inside_an_ignored_dir() -> None:
    rules = IgnoreRules.parse("logs/\n!logs/keep.txt\n")
    assert rules.is_ignored("logs/keep.txt", False)


def test_escapes_single_star_and_classes() -> None:
    rules = IgnoreRules.parse("\\#notes\nsrc/*.tmp\nfile[0-9].txt\ntrailing \n")
    assert rules.is_ignored("#notes", False)
    assert rules.is_ignored("src/a.tmp", False)
    assert not rules.is_ignored("src/deeper/a.tmp", False)  # * does not cross "/"
    assert rules.is_ignored("file7.txt", False)
    assert not rules.is_ignored("fileX.txt", False)
    assert rules.is_ignored("trailing", False)


def test_missing_gitignore_ignores_nothing(root: Path) -> None:
    assert not IgnoreRules.load(root).is_ignored("anything.log", False)


# List


async def test_list_top_level_marks_dirs_and_skips_ignored(ctx: ToolContext, tree: Path) -> None:
    result = await run(List(), ctx)
    assert result.output.splitlines() == [
        ".gitignore", "README.md", "docs/", "keep.log", "pkg/", "src/",
    ]  # fmt: skip


async def test_list_recursive(ctx: ToolContext, tree: Path) -> None:
    result = await run(List(), ctx, path="src", recursive=True)
    assert result.output.splitlines() == ["src/main.py", "src/util/", "src/util/helper.py"]


async def test_list_recursive_whole_tree_never_shows_skipped_dirs(
    ctx: ToolContext, tree: Path
) -> None:
    output = (await run(List(), ctx, recursive="true")).output
    for hidden in ["node_modules", ".git/", "build", "__pycache__", "app.log", "out/", "tmp_"]:
        assert hidden not in output
    assert "docs/secret.txt" in output
    assert "\nsecret.txt" not in output


async def test_list_caps_entries(ctx: ToolContext, root: Path) -> None:
    for n in range(620):
        (root / f"f{n:04d}.txt").write_text("")
    ctx.context_window = 100_000
    lines = (await run(List(), ctx)).output.splitlines()
    assert len(lines) == 501
    assert lines[-1] == "[120 more entries not shown]"


async def test_list_errors(ctx: ToolContext, tree: Path) -> None:
    with pytest.raises(ToolError, match=r"README\.md is a file"):
        await run(List(), ctx, path="README.md")
    with pytest.raises(ToolError, match="Directory not found: nowhere"):
        await run(List(), ctx, path="nowhere")
    with pytest.raises(ToolError, match="outside the project"):
        await run(List(), ctx, path="..")
    with pytest.raises(ToolError, match="'recursive' must be a boolean"):
        await run(List(), ctx, recursive="deep")


async def test_list_does_not_follow_symlinked_dirs(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "escape").symlink_to(outside, target_is_directory=True)
    output = (await run(List(), ctx, recursive=True)).output
    assert output == "escape"
    with pytest.raises(ToolError, match="outside the project"):
        await run(List(), ctx, path="escape")


# Glob


async def test_glob_recursive_pattern_respects_ignores(ctx: ToolContext, tree: Path) -> None:
    result = await run(Glob(), ctx, pattern="**/*.py")
    assert sorted(result.output.splitlines()) == ["src/main.py", "src/util/helper.py"]


async def test_glob_sorts_newest_first(ctx: ToolContext, tree: Path) -> None:
    os.utime(tree / "src/main.py", (1_000_000, 1_000_000))
    os.utime(tree / "src/util/helper.py", (2_000_000, 2_000_000))
    result = await run(Glob(), ctx, pattern="**/*.py")
    assert result.output.splitlines() == ["src/util/helper.py", "src/main.py"]


async def test_glob_single_star_stays_in_one_directory(ctx: ToolContext, tree: Path) -> None:
    assert (await run(Glob(), ctx, pattern="*.md")).output == "README.md"
    assert (await run(Glob(), ctx, pattern="*.py", path="src")).output == "src/main.py"


async def test_glob_braces_and_path(ctx: ToolContext, tree: Path) -> None:
    result = await run(Glob(), ctx, pattern="**/*.{md,log}")
    assert sorted(result.output.splitlines()) == ["README.md", "keep.log"]


async def test_glob_no_matches_and_errors(ctx: ToolContext, tree: Path) -> None:
    result = await run(Glob(), ctx, pattern="**/*.rs")
    assert result.ok
    assert result.output == "No files match '**/*.rs' in the project."
    with pytest.raises(ToolError, match="Missing required argument 'pattern'"):
        await run(Glob(), ctx)
    with pytest.raises(ToolError, match="outside the project"):
        await run(Glob(), ctx, pattern="*", path="../..")


async def test_glob_caps_results(ctx: ToolContext, root: Path) -> None:
    for n in range(230):
        (root / f"m{n}.py").write_text("")
    ctx.context_window = 100_000
    lines = (await run(Glob(), ctx, pattern="*.py")).output.splitlines()
    assert len(lines) == 201
    assert lines[-1] == "[30 more files not shown; narrow the pattern or path]"


# Grep


async def test_grep_regex_output_format(ctx: ToolContext, tree: Path) -> None:
    result = await run(Grep(), ctx, pattern=r"def \w+\(")
    assert result.output.splitlines() == [
        "src/main.py:1:def main():",
        "src/util/helper.py:1:def helper():",
    ]


async def test_grep_respects_gitignore_and_skip_dirs(ctx: ToolContext, tree: Path) -> None:
    files = {
        line.split(":")[0] for line in (await run(Grep(), ctx, pattern="TODO")).output.splitlines()
    }
    assert files == {"README.md", "keep.log", "src/main.py", "docs/secret.txt"}


async def test_grep_literal_versus_regex(ctx: ToolContext, root: Path) -> None:
    (root / "f.txt").write_text("abc\na.c\ncall(x\n")
    regex = await run(Grep(), ctx, pattern="a.c")
    assert regex.output.splitlines() == ["f.txt:1:abc", "f.txt:2:a.c"]
    literal = await run(Grep(), ctx, pattern="a.c", literal=True)
    assert literal.output == "f.txt:2:a.c"
    assert (await run(Grep(), ctx, pattern="call(", literal="true")).output == "f.txt:3:call(x"


async def test_grep_invalid_regex_names_the_error(ctx: ToolContext, root: Path) -> None:
    with pytest.raises(ToolError, match=r"Invalid regex 'call\(': missing \), unterminated"):
        await run(Grep(), ctx, pattern="call(")


async def test_grep_case_insensitive_and_glob_filter(ctx: ToolContext, tree: Path) -> None:
    assert (await run(Grep(), ctx, pattern="todo")).output.startswith("No matches")
    result = await run(Grep(), ctx, pattern="todo", case_insensitive=True, glob="*.py")
    assert result.output == "src/main.py:2:    return helper()  # TODO tidy"
    nested = await run(Grep(), ctx, pattern="return", glob="util/*.py", path="src")
    assert nested.output == "src/util/helper.py:2:    return 42"


async def test_grep_single_file_path(ctx: ToolContext, tree: Path) -> None:
    result = await run(Grep(), ctx, pattern="TODO", path="README.md")
    assert result.output == "README.md:2:TODO: write docs"


async def test_grep_skips_binary_files(ctx: ToolContext, root: Path) -> None:
    (root / "blob.bin").write_bytes(b"needle\x00\x01\x02")
    (root / "text.txt").write_text("needle\n")
    assert (await run(Grep(), ctx, pattern="needle")).output == "text.txt:1:needle"


async def test_grep_skips_fifos_instead_of_blocking(ctx: ToolContext, root: Path) -> None:
    os.mkfifo(root / "pipe")
    (root / "text.txt").write_text("needle\n")
    assert (await run(Grep(), ctx, pattern="needle")).output == "text.txt:1:needle"
    assert (await run(Grep(), ctx, pattern="needle", path="pipe")).output.startswith("No matches")


async def test_grep_no_matches_is_ok(ctx: ToolContext, tree: Path) -> None:
    result = await run(Grep(), ctx, pattern="zebra")
    assert result.ok
    assert result.output == "No matches for 'zebra' in the project."


async def test_grep_caps_matches_and_cuts_long_lines(ctx: ToolContext, root: Path) -> None:
    (root / "many.txt").write_text("".join(f"hit {n}\n" for n in range(300)))
    (root / "wide.txt").write_text("hit " + "w" * 1000 + "\n")
    ctx.context_window = 100_000
    lines = (await run(Grep(), ctx, pattern="hit")).output.splitlines()
    assert len(lines) == 201
    assert lines[-1] == "[capped at 200 matches; narrow the pattern or path]"
    wide = (await run(Grep(), ctx, pattern="hit w")).output
    assert len(wide) < 400
    assert wide.endswith("[... 704 more chars]")


async def test_grep_does_not_read_through_symlinks_out(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "leakdir").symlink_to(outside, target_is_directory=True)
    assert (await run(Grep(), ctx, pattern="secret")).output.startswith("No matches")
    with pytest.raises(ToolError, match="outside the project"):
        await run(Grep(), ctx, pattern="secret", path="leak.txt")


async def test_grep_argument_errors(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="'pattern' must not be empty"):
        await run(Grep(), ctx, pattern="")
    with pytest.raises(ToolError, match="'case_insensitive' must be a boolean"):
        await run(Grep(), ctx, pattern="x", case_insensitive="nope")
    with pytest.raises(ToolError, match="Path not found: missing"):
        await run(Grep(), ctx, pattern="x", path="missing")


def test_search_tools_are_read_only_with_summaries() -> None:
    for tool in (List(), Glob(), Grep()):
        assert tool.effect({}) is Effect.READ_ONLY
    assert List().summary({}) == "List ."
    assert Glob().summary({"pattern": "**/*.py"}) == "Glob **/*.py"
    assert Grep().summary({"pattern": "TODO", "path": "src"}) == "Grep TODO in src"
