"""List, Glob and Grep over real trees: ignore files, build dirs, awkward files and arguments.

Glob and Grep tests run twice: with the pure-Python search and with ripgrep (when installed),
which must give the same answers (test_ripgrep_parity.py compares them on a large tree).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from koda.tools import ripgrep
from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.glob import Glob
from koda.tools.grep import Grep
from koda.tools.ignore import IgnoreFile, Ignores, glob_to_regex, walk
from koda.tools.listing import List
from koda.tools.ripgrep import Ripgrep

GITIGNORE = """\
# build output
*.log
!keep.log
out/
/secret.txt
docs/generated/
**/tmp_*
"""

RG = ripgrep.find()
NARROW = "narrow the pattern, path or glob to see the rest"


@pytest.fixture(params=["python", "rg"])
def rg(request: pytest.FixtureRequest) -> Ripgrep | None:
    if request.param == "python":
        return None
    if RG is None:
        pytest.skip("ripgrep is not installed")
    # small_tree=0: even these tiny trees go through rg, not the in-process walk.
    return Ripgrep(RG.executable, small_tree=0)


@pytest.fixture
def tree(root: Path) -> Path:
    write(
        root,
        {
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
        },
    )
    return root


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")


async def run(tool: Any, ctx: ToolContext, **args: Any) -> ToolResult:
    result: ToolResult = await tool.run(ctx, args)
    return result


def walked(root: Path, start: Path | None = None) -> list[str]:
    return [e.rel + ("/" if e.is_dir else "") for e in walk(root, start or root)]


# Ignore rules


@pytest.mark.parametrize(("rel", "is_dir", "verdict"), [
    ("app.log", False, True),
    ("deep/nested/x.log", False, True),
    ("keep.log", False, False),  # re-included by "!keep.log"
    ("out", True, True),
    ("out", False, None),  # "out/" only matches directories
    ("secret.txt", False, True),
    ("docs/secret.txt", False, None),  # "/secret.txt" is anchored to the file's directory
    ("docs/generated", True, True),
    ("generated", True, None),
    ("a/b/tmp_x.py", False, True),
    ("tmp_y", False, True),
    ("src/main.py", False, None),
])  # fmt: skip
def test_gitignore_rules(rel: str, is_dir: bool, verdict: bool | None) -> None:
    assert IgnoreFile.parse(GITIGNORE).verdict(rel, is_dir) is verdict


def test_escapes_stars_classes_braces_and_whitespace() -> None:
    rules = IgnoreFile.parse(
        "\\#notes\n\\!bang\nsrc/*.tmp\nfile[0-9].txt\ntrailing \t\r\nspace\\ \n*.{gen,out}\n"
        "broken[ab\n"
    )
    assert rules.verdict("#notes", False)
    assert rules.verdict("!bang", False)
    assert rules.verdict("src/a.tmp", False)
    assert rules.verdict("src/deeper/a.tmp", False) is None  # * does not cross "/"
    assert rules.verdict("file7.txt", False)
    assert rules.verdict("fileX.txt", False) is None
    assert rules.verdict("trailing", False)  # trailing whitespace and CR dropped
    assert rules.verdict("space ", False)  # an escaped space is kept
    assert rules.verdict("x.gen", False) and rules.verdict("y.out", False)  # braces, as rg
    assert rules.verdict("broken[ab", False) is None  # an unclosed class never matches
    assert IgnoreFile.parse("").rules == ()


def test_glob_to_regex_shapes() -> None:
    assert glob_to_regex("**/*.py").fullmatch("a/b/c.py")
    assert glob_to_regex("**/*.py").fullmatch("c.py")
    assert not glob_to_regex("*.py").fullmatch("a/c.py")
    assert glob_to_regex("a/**").fullmatch("a/b/c")
    assert not glob_to_regex("a/**").fullmatch("a")
    assert glob_to_regex("a/**/z").fullmatch("a/z")
    assert glob_to_regex("{src,lib}/*.[ch]").fullmatch("lib/x.h")
    assert glob_to_regex("un{closed").fullmatch("un{closed")
    assert glob_to_regex("[!a]?").fullmatch("bc")
    assert glob_to_regex("[unclosed").fullmatch("[unclosed")


def test_nested_gitignore_scoping_and_precedence(root: Path) -> None:
    write(
        root,
        {
            ".gitignore": "*.tmp\n/top.txt\nlogs/\n",
            "top.txt": "",
            "a/top.txt": "",  # "/top.txt" is anchored to the root
            "a/.gitignore": "!keep.tmp\n/local.txt\nsub/*.md\n",
            "a/keep.tmp": "",  # the deeper file re-includes it
            "a/drop.tmp": "",
            "a/local.txt": "",
            "a/b/local.txt": "",  # "/local.txt" in a/ means a/local.txt only
            "a/sub/x.md": "",
            "a/sub/deeper/x.md": "",
            "b/keep.tmp": "",  # the negation only holds under a/
            "logs/keep.txt": "",
            "c/.gitignore": "!/logs/\n",  # a deeper file re-includes a directory
            "c/logs/x.txt": "",
        },
    )
    assert walked(root) == [
        ".gitignore", "a/", "a/.gitignore", "a/b/", "a/b/local.txt", "a/keep.tmp",
        "a/sub/", "a/sub/deeper/", "a/sub/deeper/x.md", "a/top.txt", "b/",
        "c/", "c/.gitignore", "c/logs/", "c/logs/x.txt",
    ]  # fmt: skip


def test_negation_cannot_reinclude_inside_an_ignored_dir(root: Path) -> None:
    write(root, {".gitignore": "logs/\n!logs/keep.txt\n", "logs/keep.txt": "", "a.txt": ""})
    assert walked(root) == [".gitignore", "a.txt"]


def test_git_info_exclude_ranks_below_gitignore(root: Path) -> None:
    write(
        root,
        {
            ".git/info/exclude": "*.secret\nlocal/\nshared.secret\n",
            ".gitignore": "!shared.secret\n",
            "a.secret": "",
            "shared.secret": "",
            "local/x": "",
            "kept": "",
        },
    )
    assert walked(root) == [".gitignore", "kept", "shared.secret"]


def test_git_file_pointing_elsewhere_finds_the_exclude(root: Path, tmp_path: Path) -> None:
    # A worktree's .git is a file naming its git dir, whose commondir holds info/exclude.
    common = tmp_path / "main.git"
    gitdir = common / "worktrees" / "wt"
    write(gitdir, {"commondir": "../..\n"})
    write(common, {"info/exclude": "*.bak\n"})
    write(root, {".git": f"gitdir: {gitdir}\n", "x.bak": "", "x.py": ""})
    assert walked(root) == [".git", "x.py"]


def test_dot_ignore_and_rgignore_outrank_gitignore(root: Path) -> None:
    write(
        root,
        {
            ".ignore": "*.gen\n",
            "a/.gitignore": "!x.gen\n",  # a .gitignore, however deep, ranks below .ignore
            "a/x.gen": "",
            "a/.rgignore": "!y.gen\n",
            "a/y.gen": "",
        },
    )
    assert walked(root) == [".ignore", "a/", "a/.gitignore", "a/.rgignore", "a/y.gen"]


def test_walk_from_a_subdirectory_applies_its_parents_rules(root: Path) -> None:
    write(
        root,
        {
            ".gitignore": "*.o\n/src/gen/\n",
            "src/.gitignore": "local_*\n",
            "src/a/x.o": "",
            "src/a/local_y": "",
            "src/a/z.c": "",
            "src/gen/g.c": "",
        },
    )
    assert walked(root, root / "src" / "a") == ["src/a/z.c"]
    # Asking for an ignored directory itself searches it.
    assert walked(root, root / "src" / "gen") == ["src/gen/g.c"]
    ignores = Ignores.above(root, root / "src" / "a")
    assert ignores.as_one_file() == "*.o\n/src/gen/\nsrc/**/local_*\n"


def test_one_file_refuses_a_parent_dot_ignore(root: Path) -> None:
    write(root, {".ignore": "x\n", "src/f": ""})
    assert Ignores.above(root, root / "src").as_one_file() is None
    assert Ignores.above(root, root).as_one_file() == ""


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_walk_agrees_with_git(root: Path, tmp_path: Path) -> None:
    """git itself says which untracked files are not ignored; the walk must list the same."""
    write(
        root,
        {
            ".gitignore": "*.log\n!important.log\n/root_only.txt\nlogs/\ndocs/**/draft*\n"
            "*.py[co]\n\\#hash\nsp\\ ace\n",
            "a.log": "", "important.log": "", "root_only.txt": "", "x/root_only.txt": "",
            "logs/a.txt": "", "x/logs/b.txt": "", "docs/draft1.md": "", "docs/a/b/draft2.md": "",
            "docs/final.md": "", "m.pyc": "", "m.py": "", "#hash": "", "sp ace": "",
            "x/.gitignore": "!*.log\n/local/\nnested.txt\n",
            "x/a.log": "", "x/local/l.txt": "", "x/y/local/l.txt": "", "x/y/nested.txt": "",
            "x/y/.gitignore": "!nested.txt\n", "x/z/nested.txt": "",
            "deep/a/b/c/.gitignore": "*\n!.gitignore\n!keep\n", "deep/a/b/c/keep": "",
            "deep/a/b/c/drop": "",
        },
    )  # fmt: skip
    env = {"HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.environ["PATH"]}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    write(root, {".git/info/exclude": "x/z/\n"})
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "-z"],
        cwd=root,
        check=True,
        capture_output=True,
        env=env,
    ).stdout.decode()
    expected = sorted(p for p in listed.split("\0") if p)
    ours = sorted(e.rel for e in walk(root, root) if e.is_file)
    assert ours == expected
    assert "important.log" in ours and "x/a.log" in ours and "deep/a/b/c/keep" in ours


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


async def test_list_honours_nested_gitignore(ctx: ToolContext, root: Path) -> None:
    write(root, {"pkg/.gitignore": "*.gen\n", "pkg/a.gen": "", "pkg/a.py": "", "b.gen": ""})
    result = await run(List(), ctx, recursive=True)
    assert result.output.splitlines() == ["b.gen", "pkg/", "pkg/.gitignore", "pkg/a.py"]


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
    with pytest.raises(ToolError, match="outside the project"):
        await run(List(), ctx, path="/etc")
    with pytest.raises(ToolError, match="'recursive' must be a boolean"):
        await run(List(), ctx, recursive="deep")
    with pytest.raises(ToolError, match="'path' must be a string"):
        await run(List(), ctx, path=3)


async def test_list_does_not_follow_symlinked_dirs(
    ctx: ToolContext, root: Path, outside: Path
) -> None:
    (root / "escape").symlink_to(outside, target_is_directory=True)
    output = (await run(List(), ctx, recursive=True)).output
    assert output == "escape"
    with pytest.raises(ToolError, match="outside the project"):
        await run(List(), ctx, path="escape")


async def test_list_shows_names_that_are_not_utf8(ctx: ToolContext, root: Path) -> None:
    (root / os.fsdecode(b"caf\xe9.txt")).write_text("")
    assert (await run(List(), ctx)).output == "caf\ufffd.txt"


# Glob


async def test_glob_recursive_pattern_respects_ignores(
    ctx: ToolContext, tree: Path, rg: Ripgrep | None
) -> None:
    result = await run(Glob(rg), ctx, pattern="**/*.py")
    assert sorted(result.output.splitlines()) == ["src/main.py", "src/util/helper.py"]


async def test_glob_sorts_newest_first_then_by_path(
    ctx: ToolContext, tree: Path, rg: Ripgrep | None
) -> None:
    os.utime(tree / "src/main.py", (1_000_000, 1_000_000))
    os.utime(tree / "src/util/helper.py", (2_000_000, 2_000_000))
    result = await run(Glob(rg), ctx, pattern="**/*.py")
    assert result.output.splitlines() == ["src/util/helper.py", "src/main.py"]
    os.utime(tree / "src/main.py", (2_000_000, 2_000_000))
    result = await run(Glob(rg), ctx, pattern="**/*.py")
    assert result.output.splitlines() == ["src/main.py", "src/util/helper.py"]


async def test_glob_single_star_stays_in_one_directory(
    ctx: ToolContext, tree: Path, rg: Ripgrep | None
) -> None:
    assert (await run(Glob(rg), ctx, pattern="*.md")).output == "README.md"
    assert (await run(Glob(rg), ctx, pattern="*.py", path="src")).output == "src/main.py"
    assert (await run(Glob(rg), ctx, pattern="./src/*.py")).output == "src/main.py"


async def test_glob_braces_hidden_files_and_nested_ignores(
    ctx: ToolContext, tree: Path, rg: Ripgrep | None
) -> None:
    write(tree, {".github/ci.yml": "", "src/util/.gitignore": "helper.py\n"})
    result = await run(Glob(rg), ctx, pattern="**/*.{md,log,yml,py}")
    assert sorted(result.output.splitlines()) == [
        ".github/ci.yml", "README.md", "keep.log", "src/main.py",
    ]  # fmt: skip


async def test_glob_leaves_out_symlinks_and_fifos(
    ctx: ToolContext, root: Path, outside: Path, rg: Ripgrep | None
) -> None:
    (root / "real.txt").write_text("x")
    (root / "link.txt").symlink_to(root / "real.txt")
    (root / "out.txt").symlink_to(outside / "secret.txt")
    os.mkfifo(root / "pipe.txt")
    assert (await run(Glob(rg), ctx, pattern="*.txt")).output == "real.txt"


async def test_glob_no_matches_and_errors(ctx: ToolContext, tree: Path, rg: Ripgrep | None) -> None:
    result = await run(Glob(rg), ctx, pattern="**/*.rs")
    assert result.ok
    assert result.output == "No files match '**/*.rs' in the project."
    with pytest.raises(ToolError, match="Missing required argument 'pattern'"):
        await run(Glob(rg), ctx)
    with pytest.raises(ToolError, match="'pattern' must not be empty"):
        await run(Glob(rg), ctx, pattern="  ")
    with pytest.raises(ToolError, match="outside the project"):
        await run(Glob(rg), ctx, pattern="*", path="../..")
    with pytest.raises(ToolError, match=r"Directory not found: README\.md"):
        await run(Glob(rg), ctx, pattern="*", path="README.md")


async def test_glob_caps_results(ctx: ToolContext, root: Path, rg: Ripgrep | None) -> None:
    for n in range(230):
        (root / f"m{n}.py").write_text("")
    ctx.context_window = 100_000
    lines = (await run(Glob(rg), ctx, pattern="*.py")).output.splitlines()
    assert len(lines) == 201
    assert lines[-1] == "[30 more files not shown; narrow the pattern or path]"


# Grep


async def test_grep_regex_output_format(ctx: ToolContext, tree: Path, rg: Ripgrep | None) -> None:
    result = await run(Grep(rg), ctx, pattern=r"def \w+\(")
    assert result.output.splitlines() == [
        "src/main.py:1:def main():",
        "src/util/helper.py:1:def helper():",
    ]


async def test_grep_respects_gitignore_and_skip_dirs(
    ctx: ToolContext, tree: Path, rg: Ripgrep | None
) -> None:
    output = (await run(Grep(rg), ctx, pattern="TODO")).output
    assert [line.split(":")[0] for line in output.splitlines()] == [
        "README.md", "docs/secret.txt", "keep.log", "src/main.py",
    ]  # fmt: skip


async def test_grep_in_a_subdirectory_applies_parent_ignores(
    ctx: ToolContext, tree: Path, rg: Ripgrep | None
) -> None:
    write(tree, {"src/util/x.log": "TODO log\n", "src/util/y.txt": "TODO text\n"})
    output = (await run(Grep(rg), ctx, pattern="TODO", path="src/util")).output
    assert output == "src/util/y.txt:1:TODO text"


async def test_grep_literal_versus_regex(ctx: ToolContext, root: Path, rg: Ripgrep | None) -> None:
    (root / "f.txt").write_text("abc\na.c\ncall(x\n")
    regex = await run(Grep(rg), ctx, pattern="a.c")
    assert regex.output.splitlines() == ["f.txt:1:abc", "f.txt:2:a.c"]
    literal = await run(Grep(rg), ctx, pattern="a.c", literal=True)
    assert literal.output == "f.txt:2:a.c"
    assert (await run(Grep(rg), ctx, pattern="call(", literal="true")).output == "f.txt:3:call(x"


async def test_grep_python_regex_features(ctx: ToolContext, root: Path, rg: Ripgrep | None) -> None:
    (root / "f.txt").write_text("foobar\nfoobaz\nabab\nx²\nend\n")
    grep = Grep(rg)
    assert (await run(grep, ctx, pattern="foo(?!bar)")).output == "f.txt:2:foobaz"
    assert (await run(grep, ctx, pattern=r"(?<=foo)bar")).output == "f.txt:1:foobar"
    assert (await run(grep, ctx, pattern=r"^(ab)\1$")).output == "f.txt:3:abab"
    assert (await run(grep, ctx, pattern=r"x\w")).output == "f.txt:4:x²"  # Python's \w
    assert (await run(grep, ctx, pattern=r"(?P<w>e)nd\Z")).output == "f.txt:5:end"


async def test_grep_invalid_regex_names_the_error(ctx: ToolContext, root: Path) -> None:
    with pytest.raises(ToolError, match=r"Invalid regex 'call\(': missing \), unterminated"):
        await run(Grep(), ctx, pattern="call(")


async def test_grep_case_insensitive_and_glob_filter(
    ctx: ToolContext, tree: Path, rg: Ripgrep | None
) -> None:
    assert (await run(Grep(rg), ctx, pattern="todo")).output.startswith("No matches")
    result = await run(Grep(rg), ctx, pattern="todo", case_insensitive=True, glob="*.py")
    assert result.output == "src/main.py:2:    return helper()  # TODO tidy"
    nested = await run(Grep(rg), ctx, pattern="return", glob="util/*.py", path="src")
    assert nested.output == "src/util/helper.py:2:    return 42"
    braces = await run(Grep(rg), ctx, pattern="TODO", glob="*.{md,log}")
    assert [line.split(":")[0] for line in braces.output.splitlines()] == ["README.md", "keep.log"]


async def test_grep_case_insensitive_is_pythons(
    ctx: ToolContext, root: Path, rg: Ripgrep | None
) -> None:
    # Python folds "ı" (dotless i), "İ" and the Kelvin sign where Rust's (?i) does not.
    (root / "t.txt").write_text("DIŞ\nİstanbul\n\u212aelvin\nplain\n")
    grep = Grep(rg)
    assert (await run(grep, ctx, pattern="dış", case_insensitive=True)).output == "t.txt:1:DIŞ"
    assert (await run(grep, ctx, pattern="is", case_insensitive=True)).output == "t.txt:2:İstanbul"
    result = await run(grep, ctx, pattern="kelvin", case_insensitive=True)
    assert result.output == "t.txt:3:\u212aelvin"


async def test_grep_context_lines_and_separators(
    ctx: ToolContext, root: Path, rg: Ripgrep | None
) -> None:
    (root / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 21)))
    (root / "b.txt").write_text("hit\nafter\n")
    result = await run(Grep(rg), ctx, pattern=r"^line (3|5|15)$|^hit", context=1)
    assert result.output.splitlines() == [
        "a.txt-2-line 2", "a.txt:3:line 3", "a.txt-4-line 4", "a.txt:5:line 5", "a.txt-6-line 6",
        "--",
        "a.txt-14-line 14", "a.txt:15:line 15", "a.txt-16-line 16",
        "--",
        "b.txt:1:hit", "b.txt-2-after",
    ]  # fmt: skip
    edges = await run(Grep(rg), ctx, pattern=r"^line (1|20)$", context=3)
    assert edges.output.splitlines() == [
        "a.txt:1:line 1", "a.txt-2-line 2", "a.txt-3-line 3", "a.txt-4-line 4",
        "--",
        "a.txt-17-line 17", "a.txt-18-line 18", "a.txt-19-line 19", "a.txt:20:line 20",
    ]  # fmt: skip


async def test_grep_context_is_capped_and_validated(
    ctx: ToolContext, root: Path, rg: Ripgrep | None
) -> None:
    (root / "a.txt").write_text("".join(f"l{n}\n" for n in range(1, 41)))
    result = await run(Grep(rg), ctx, pattern="^l20$", context=99)
    assert len(result.output.splitlines()) == 21  # 10 before and 10 after
    with pytest.raises(ToolError, match="'context' must be at least 0"):
        await run(Grep(rg), ctx, pattern="x", context=-1)
    with pytest.raises(ToolError, match="'context' must be an integer"):
        await run(Grep(rg), ctx, pattern="x", context="lots")


async def test_grep_crlf_bom_and_non_utf8(ctx: ToolContext, root: Path, rg: Ripgrep | None) -> None:
    (root / "crlf.txt").write_bytes(b"one\r\ntwo end\r\nlast\r")
    (root / "latin.txt").write_bytes(b"caf\xe9 end\n")
    (root / "bom.txt").write_bytes(b"\xef\xbb\xbfend first\n")
    grep = Grep(rg)
    assert (await run(grep, ctx, pattern="end$")).output.splitlines() == [
        "crlf.txt:2:two end", "latin.txt:1:caf\ufffd end",
    ]  # fmt: skip
    assert (await run(grep, ctx, pattern="^last$")).output == "crlf.txt:3:last"
    assert (await run(grep, ctx, pattern="caf.")).output == "latin.txt:1:caf\ufffd end"
    assert (await run(grep, ctx, pattern="^\ufeffend")).output == "bom.txt:1:\ufeffend first"


async def test_grep_single_file_path(ctx: ToolContext, tree: Path, rg: Ripgrep | None) -> None:
    result = await run(Grep(rg), ctx, pattern="TODO", path="README.md")
    assert result.output == "README.md:2:TODO: write docs"
    # Named explicitly, an ignored file is searched.
    assert (await run(Grep(rg), ctx, pattern="TODO", path="app.log")).output == (
        "app.log:1:TODO in a log"
    )


async def test_grep_skips_binary_files(ctx: ToolContext, root: Path, rg: Ripgrep | None) -> None:
    (root / "blob.bin").write_bytes(b"needle\x00\x01\x02")
    # A NUL far into the file still makes it binary, matches before it included.
    (root / "late.bin").write_bytes(b"needle\n" + b"x" * 200_000 + b"\x00")
    (root / "utf16.txt").write_text("needle\n", encoding="utf-16")
    (root / "text.txt").write_text("needle\n")
    assert (await run(Grep(rg), ctx, pattern="needle")).output == "text.txt:1:needle"
    with pytest.raises(ToolError, match=r"blob\.bin is a binary file"):
        await run(Grep(rg), ctx, pattern="needle", path="blob.bin")


async def test_grep_skips_fifos_instead_of_blocking(
    ctx: ToolContext, root: Path, rg: Ripgrep | None
) -> None:
    os.mkfifo(root / "pipe")
    (root / "text.txt").write_text("needle\n")
    assert (await run(Grep(rg), ctx, pattern="needle")).output == "text.txt:1:needle"
    with pytest.raises(ToolError, match="pipe is not a regular file"):
        await run(Grep(rg), ctx, pattern="needle", path="pipe")


async def test_grep_no_matches_is_ok(ctx: ToolContext, tree: Path, rg: Ripgrep | None) -> None:
    result = await run(Grep(rg), ctx, pattern="zebra")
    assert result.ok
    assert result.output == "No matches for 'zebra' in the project."
    assert (await run(Grep(rg), ctx, pattern="a\nb")).output.startswith("No matches")


async def test_grep_caps_matches_and_cuts_long_lines(
    ctx: ToolContext, root: Path, rg: Ripgrep | None
) -> None:
    (root / "many.txt").write_text("".join(f"hit {n}\n" for n in range(300)))
    (root / "wide.txt").write_text("hit " + "w" * 1000 + "\n")
    ctx.context_window = 100_000
    lines = (await run(Grep(rg), ctx, pattern="hit")).output.splitlines()
    assert len(lines) == 201
    assert lines[199] == "many.txt:200:hit 199"
    assert lines[-1] == f"[output capped at 200 lines; {NARROW}]"
    wide = (await run(Grep(rg), ctx, pattern="hit w")).output
    assert len(wide) < 400
    assert wide.endswith("[... 704 more chars]")
    # Exactly the cap is not capped.
    (root / "many.txt").write_text("".join(f"hit {n}\n" for n in range(199)))
    assert "capped" not in (await run(Grep(rg), ctx, pattern="hit")).output


async def test_grep_cap_counts_context_lines(
    ctx: ToolContext, root: Path, rg: Ripgrep | None
) -> None:
    (root / "a.txt").write_text("".join(f"{'hit' if n % 10 == 0 else 'x'}\n" for n in range(900)))
    ctx.context_window = 100_000
    lines = (await run(Grep(rg), ctx, pattern="hit", context=2)).output.splitlines()
    assert len([line for line in lines[:-1] if line != "--"]) == 200
    assert lines[-1].startswith("[output capped at 200 lines")
    assert lines[:4] == ["a.txt:1:hit", "a.txt-2-x", "a.txt-3-x", "--"]


async def test_grep_skips_files_over_the_size_limit(
    ctx: ToolContext, root: Path, rg: Ripgrep | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from koda.tools import grep

    monkeypatch.setattr(grep, "MAX_FILE_BYTES", 1000)
    (root / "big.txt").write_text("needle\n" + "x" * 2000)
    (root / "small.txt").write_text("needle\n")
    assert (await run(Grep(rg), ctx, pattern="needle")).output == "small.txt:1:needle"
    with pytest.raises(ToolError, match=r"big\.txt is larger than"):
        await run(Grep(rg), ctx, pattern="needle", path="big.txt")


async def test_grep_does_not_read_through_symlinks_out(
    ctx: ToolContext, root: Path, outside: Path, rg: Ripgrep | None
) -> None:
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "leakdir").symlink_to(outside, target_is_directory=True)
    assert (await run(Grep(rg), ctx, pattern="secret")).output.startswith("No matches")
    with pytest.raises(ToolError, match="outside the project"):
        await run(Grep(rg), ctx, pattern="secret", path="leak.txt")
    with pytest.raises(ToolError, match="outside the project"):
        await run(Grep(rg), ctx, pattern="secret", path="/etc/passwd")


async def test_grep_argument_errors(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="'pattern' must not be empty"):
        await run(Grep(), ctx, pattern="")
    with pytest.raises(ToolError, match="Missing required argument 'pattern'"):
        await run(Grep(), ctx)
    with pytest.raises(ToolError, match="'pattern' must be a string"):
        await run(Grep(), ctx, pattern=["x"])
    with pytest.raises(ToolError, match="'case_insensitive' must be a boolean"):
        await run(Grep(), ctx, pattern="x", case_insensitive="nope")
    with pytest.raises(ToolError, match="'glob' must be a string"):
        await run(Grep(), ctx, pattern="x", glob=1)
    with pytest.raises(ToolError, match="Path not found: missing"):
        await run(Grep(), ctx, pattern="x", path="missing")


def test_search_tools_are_read_only_with_summaries() -> None:
    for tool in (List(), Glob(), Grep()):
        assert tool.effect({}) is Effect.READ_ONLY
    assert List().summary({}) == "List ."
    assert Glob().summary({"pattern": "**/*.py"}) == "Glob **/*.py"
    assert Grep().summary({"pattern": "TODO", "path": "src"}) == "Grep TODO in src"


def test_definitions_stay_small() -> None:
    import json

    for tool in (List(), Glob(), Grep()):
        size = len(json.dumps({"name": tool.name, "description": tool.description,
                               "parameters": tool.parameters}))  # fmt: skip
        assert size <= 700, (tool.name, size)


async def test_glob_and_grep_refuse_broken_globs_and_wrong_types(
    ctx: ToolContext, tree: Path
) -> None:
    with pytest.raises(ToolError, match=r"Invalid glob '\[z-a\]\.py'"):
        await run(Glob(), ctx, pattern="[z-a].py")
    with pytest.raises(ToolError, match=r"Invalid glob '\[z-a\]'"):
        await run(Grep(), ctx, pattern="x", glob="[z-a]")
    with pytest.raises(ToolError, match="'path' must be a string"):
        await run(Glob(), ctx, pattern="*", path=["src"])
    with pytest.raises(ToolError, match="'path' must be a string"):
        await run(Grep(), ctx, pattern="x", path=5)


# Finding and running ripgrep


def fake_rg(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "rg"
    exe.write_text(f"#!/bin/sh\necho 'ripgrep {version}'\n")
    exe.chmod(0o755)
    return exe


def test_find_prefers_path_and_requires_ripgrep_11(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fake_rg(tmp_path / "old", "10.0.3")
    new = fake_rg(tmp_path / "new", "13.0.0 (rev abc)")
    assert not ripgrep._usable(str(old))
    assert ripgrep._usable(str(new))
    assert not ripgrep._usable(str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(new.parent))
    ripgrep.find.cache_clear()
    try:
        assert ripgrep.find() == Ripgrep(str(new))
    finally:
        ripgrep.find.cache_clear()


async def test_a_cancelled_search_stops(ctx: ToolContext, tree: Path, rg: Ripgrep | None) -> None:
    ctx.cancel.cancel()
    assert (await run(Grep(rg), ctx, pattern="TODO")).output.startswith("No matches")
    assert (await run(Glob(rg), ctx, pattern="**/*")).output.startswith("No files match")
    if rg is not None:
        assert ripgrep.list_files(rg, tree, tree, should_stop=lambda: True) is None


def test_small_trees_are_walked_without_starting_rg(tmp_path: Path, tree: Path) -> None:
    # An rg that would fail loudly if started: small trees must not need it.
    broken = Ripgrep(str(tmp_path / "no-such-rg"), small_tree=100)
    assert ripgrep.files(broken, tree, tree) == [e.rel for e in walk(tree, tree) if e.is_file]
    # Above the threshold it is tried, fails, and the walk answers all the same.
    tiny = Ripgrep(str(tmp_path / "no-such-rg"), small_tree=1)
    assert ripgrep.files(tiny, tree, tree) == ripgrep.files(broken, tree, tree)
