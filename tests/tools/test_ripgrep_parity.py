"""Grep and Glob answer byte for byte the same with ripgrep as with the pure-Python search.

One generated tree holds what makes searching hard: nested ignore files (negations, anchors,
classes, braces, escapes, a CRLF one), .git/info/exclude, .ignore and .rgignore, hidden files,
build directories, symlinks, a FIFO, binary and UTF-16 files, unicode and non-UTF-8 names and
text, CRLF and lone CR, BOMs, long lines and more matches than the cap. Every pattern below runs
both ways on several paths. rg runs through a wrapper that logs its calls and stderr, so the test
also proves that rg really answered (nothing fell back to Python unnoticed), and the Python side
is checked against a plain re-implementation of the documented line semantics.
"""

from __future__ import annotations

import os
import random
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from koda.cancel import CancelToken
from koda.tools import ripgrep
from koda.tools.base import ToolContext
from koda.tools.glob import Glob
from koda.tools.grep import Grep
from koda.tools.ignore import path_key, printable, walk
from koda.tools.ripgrep import Ripgrep

RG = ripgrep.find()
pytestmark = pytest.mark.skipif(RG is None, reason="ripgrep is not installed")

CONTEXT_WINDOW = 400_000  # caps at 800 lines: some patterns reach it, most do not
CAP = 800

WORDS = [
    "needle", "TODO", "todo", "foo(", "foobar", "foobaz", "def run(self):", "    def x():",
    "café", "CAFÉ", "straße", "STRASSE", "ẞ", "DIŞ", "dış", "İstanbul", "\u212aelvin", "x²",
    "日本語", "テスト", "\t", "\\", "[", "aab", "end", "x" * 130, "1234", "# comment", "import os",
    "\ufffd", "é", "ÿ", "needle needle", "xy", "Needle", "NEEDLE", "  ", "a.b", "ab", "ı",
]  # fmt: skip
ENDINGS = [b"\n", b"\n", b"\n", b"\r\n", b"\r\n", b"\r\n", b" \n", b"\r\r\n"]
INVALID = [b"\xff", b"\xe9", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80"]


def random_text(rng: random.Random, lines: int) -> bytes:
    out = []
    for _ in range(lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(0, 4))]
        line = " ".join(words).encode("utf-8")
        if rng.random() < 0.08:
            line += rng.choice(INVALID) + b"x"
        if rng.random() < 0.03:
            line = line.replace(b" ", b"\r", 1)  # a lone CR inside a line
        out.append(line + rng.choice(ENDINGS))
    data = b"".join(out)
    cut = rng.random()
    if cut < 0.2:
        data = data.rstrip(b"\r\n")  # no final newline
    elif cut < 0.3:
        data = data.rstrip(b"\r\n") + b"\r"  # a final lone CR
    return data


def build_tree(root: Path) -> None:
    rng = random.Random(20261122)
    files: dict[str, bytes] = {
        ".gitignore": (
            b"*.log\n!keep.log\n/build.txt\nout/\n**/gen_*\n*.py[co]\ndocs/**/draft*\n"
            b"\\#hash.txt\nsp\\ ace.txt\ntrail.txt   \n*.{tmp,swp}\n# a comment\n\n"
        ),
        ".git/info/exclude": b"*.secret\n",
        ".git/HEAD": b"needle\n",
        "src/.gitignore": b"!important.log\n/local.txt\nsub/*.md\n[Tt]emp*\n",
        "src/deep/.gitignore": b"*.bak\r\n!keep.bak\r\n",
        "src/deep/inner/.rgignore": b"hidden_by_rgignore.txt\n",
        "src/deep/inner/.gitignore": b"!hidden_by_rgignore.txt\n",
        "dotignored/.ignore": b"*.txt\n",
        "dotignored/sub/.gitignore": b"!a.txt\n",
        "bin/blob.bin": b"needle\x00\x01\x02",
        "bin/late.dat": b"needle\n" + b"filler line\n" * 10_000 + b"\x00",
        "bin/utf16.txt": "needle utf16\n".encode("utf-16"),
        "bom.txt": b"\xef\xbb\xbfneedle with bom\r\n\xef\xbb\xbfsecond\n",
        "many.txt": b"".join(b"needle %d\n" % n for n in range(700)),
        "empty.txt": b"",
        "long.txt": b"needle " + b"x" * 1000 + b"\n" + "é".encode() * 400 + b"\n",
    }
    names = [
        "a.py", "b.txt", "keep.log", "drop.log", "build.txt", "x/build.txt", "out/o.txt",
        "x/out/o.txt", "gen_1.txt", "x/gen_2.py", "m.pyc", "docs/draft.md", "docs/a/draft2.md",
        "docs/final.md", "#hash.txt", "sp ace.txt", "trail.txt", "t.tmp", "t.swp", "x.secret",
        "src/a.py", "src/important.log", "src/other.log", "src/local.txt", "src/x/local.txt",
        "src/sub/r.md", "src/sub/deep/r.md", "src/Temp1.txt", "src/temp2.txt", "src/x/Temp3.txt",
        "src/deep/a.bak", "src/deep/keep.bak", "src/deep/c.py", "src/deep/inner/seen.txt",
        "src/deep/inner/hidden_by_rgignore.txt", "dotignored/b.txt", "dotignored/b.py",
        "dotignored/sub/a.txt", "dotignored/sub/c.py", ".config/settings.txt", ".hidden.txt",
        "src/.env",
        "node_modules/pkg/index.js", "build/x.txt", "__pycache__/m.txt", "src/target/t.txt",
        "données/été.txt", "日本/テスト.txt", "a b [1]/c {d}.txt", "!bang/x.txt", "#dir/x.txt",
        "-dash.txt", "UPPER.TXT", "src/deep/deeper/deepest/z.txt",
    ]  # fmt: skip
    for name in names:
        files[name] = random_text(rng, rng.randint(0, 40))
    for n in range(120):
        folder = rng.choice(["", "src/", "src/deep/", "lib/", "lib/x/", "tests/", "docs/"])
        files[f"{folder}gen{n:03d}.{rng.choice(['py', 'txt', 'md', 'c', 'log'])}"] = random_text(
            rng, rng.randint(0, 60)
        )
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / os.fsdecode(b"caf\xe9-name.txt")).write_bytes(b"needle in a latin-1 name\n")
    (root / "link.txt").symlink_to(root / "src" / "a.py")
    (root / "linkdir").symlink_to(root / "src", target_is_directory=True)
    (root / "dangling").symlink_to(root / "nowhere")
    os.mkfifo(root / "fifo")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parity") / "project"
    root.mkdir()
    build_tree(root)
    return root.resolve()


@pytest.fixture(scope="module")
def logged_rg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ripgrep, Path, Path]:
    """rg behind a wrapper that records each call and whatever rg writes to stderr."""
    assert RG is not None
    folder = tmp_path_factory.mktemp("rg")
    calls, errors = folder / "calls.log", folder / "stderr.log"
    wrapper = folder / "rg"
    wrapper.write_text(
        "#!/bin/bash\n"
        f'printf "%s\\n" "$*" >> "{calls}"\n'
        f'exec "{RG.executable}" "$@" 2> >(tee -a "{errors}" >&2)\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    calls.write_text("")
    errors.write_text("")
    return Ripgrep(str(wrapper), small_tree=0), calls, errors


def context(root: Path) -> ToolContext:
    class Tracker:
        def record_created(self, path: Path) -> None: ...
        def is_owned(self, path: Path) -> bool:
            return False

        def record_read(self, path: Path, digest: str) -> None: ...
        def read_digest(self, path: Path) -> str | None:
            return None

    return ToolContext(
        project_root=root,
        cancel=CancelToken(),
        file_tracker=Tracker(),
        context_window=CONTEXT_WINDOW,
    )


PATTERNS: list[dict[str, Any]] = [
    {"pattern": "needle"},
    {"pattern": "todo", "case_insensitive": True},
    {"pattern": "foo(", "literal": True},
    {"pattern": r"\bfoo\w*"},
    {"pattern": r"^\s*def \w+"},
    {"pattern": r"end$"},
    {"pattern": r"^$"},
    {"pattern": "."},
    {"pattern": r"\d{3,}"},
    {"pattern": r"[^\x00-\x7f]"},
    {"pattern": "\ufffd"},
    {"pattern": "caf."},
    {"pattern": "é", "case_insensitive": True},
    {"pattern": "straße", "case_insensitive": True},
    {"pattern": "ı", "case_insensitive": True},
    {"pattern": "kelvin", "case_insensitive": True},
    {"pattern": r"(?<=x)y"},
    {"pattern": r"foo(?!bar)"},
    {"pattern": r"(\w)\1"},
    {"pattern": r"\Aimport"},
    {"pattern": r"end\Z"},
    {"pattern": r"\r"},
    {"pattern": r"\s$"},
    {"pattern": "a\nb"},
    {"pattern": r"(?x) n e e d l e \s+ \d"},
    {"pattern": r"(?a)\w+é"},
    {"pattern": r"\W{3}"},
    {"pattern": r"x{120}"},
    {"pattern": r"(?>a+)b"},
    {"pattern": r"a++b"},
    {"pattern": r"(?i:NEEDLE)|zz"},
    {"pattern": "\ufeff"},
    {"pattern": "[", "literal": True},
    {"pattern": r"\\"},
    {"pattern": r"\t"},
    {"pattern": "日本"},
    {"pattern": r"^.{0,3}$"},
    {"pattern": r"(?s).needle"},
    {"pattern": r"(?m)^needle$"},
    {"pattern": r"(?-i:N)eedle", "case_insensitive": True},
    {"pattern": r"x²|\u00b2"},
    {"pattern": r"(n)?(?(1)eedle|TODO)"},
    {"pattern": r"needle", "glob": "*.txt"},
    {"pattern": r"needle", "glob": "src/**/*.py"},
    {"pattern": r"needle", "glob": "*.{md,txt}"},
    {"pattern": r"needle", "glob": "[a-c]*"},
    {"pattern": "needle", "context": 2},
    {"pattern": "needle", "context": 10},
    {"pattern": r"^\S+$", "context": 1},
]
PATHS = [".", "src", "src/deep", "dotignored/sub", ".config", "out", "node_modules", "données"]


@pytest.mark.parametrize("args", PATTERNS, ids=lambda a: repr(a)[:60])
async def test_grep_is_identical_both_ways(
    project: Path, logged_rg: tuple[Ripgrep, Path, Path], args: dict[str, Any]
) -> None:
    rg = logged_rg[0]
    ctx = context(project)
    paths = PATHS if args["pattern"] in ("needle", ".", "é", r"^\s*def \w+") else [".", "src/deep"]
    for path in paths:
        slow = (await Grep(None).run(ctx, {**args, "path": path})).output
        fast = (await Grep(rg).run(ctx, {**args, "path": path})).output
        assert fast == slow, (path, args)
        if path == "." and not args.get("context") and "glob" not in args:
            assert slow.split("\n[output capped")[0] == oracle(project, args)


def text_lines(data: bytes) -> list[str] | None:
    """A file's lines as Grep documents them, or None for a binary file."""
    if b"\0" in data:
        return None
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [raw.removesuffix(b"\r").decode("utf-8", "replace") for raw in parts]


def oracle(root: Path, args: dict[str, Any]) -> str:
    """Grep's documented semantics written plainly: for each walked regular file that holds no
    NUL byte, split on "\\n", drop one trailing "\\r", decode with U+FFFD, `re.search` a line."""
    source = re.escape(args["pattern"]) if args.get("literal") else args["pattern"]
    regex = re.compile(source, re.IGNORECASE if args.get("case_insensitive") else 0)
    lines = []
    for entry in walk(root, root):
        if not entry.is_file or entry.is_link:
            continue
        for number, text in enumerate(text_lines(entry.path.read_bytes()) or [], start=1):
            if regex.search(text):
                cut = (
                    text
                    if len(text) <= 300
                    else text[:300] + f" [... {len(text) - 300} more chars]"
                )
                lines.append(f"{printable(entry.rel)}:{number}:{cut}")
    if not lines:
        return f"No matches for {args['pattern']!r} in the project."
    return "\n".join(lines[:CAP])


GLOBS = ["**/*", "*", "**/*.py", "src/**/*.txt", "**/*.{md,log}", "**/[a-c]*", "**/.*", "*/*"]


@pytest.mark.parametrize("pattern", GLOBS)
async def test_glob_is_identical_both_ways(
    project: Path, logged_rg: tuple[Ripgrep, Path, Path], pattern: str
) -> None:
    ctx = context(project)
    for path in PATHS:
        slow = (await Glob(None).run(ctx, {"pattern": pattern, "path": path})).output
        fast = (await Glob(logged_rg[0]).run(ctx, {"pattern": pattern, "path": path})).output
        assert fast == slow, (path, pattern)


@pytest.mark.parametrize("path", PATHS)
def test_rg_lists_exactly_the_walked_files(
    project: Path, logged_rg: tuple[Ripgrep, Path, Path], path: str
) -> None:
    base = project / path
    listed = ripgrep.list_files(logged_rg[0], project, base)
    if path == "dotignored/sub":
        # Its parent's .ignore outranks .gitignore files, which rg cannot be told: Python walks.
        assert listed is None
        return
    assert listed is not None
    assert sorted(listed, key=path_key) == [e.rel for e in walk(project, base) if e.is_file]


@pytest.mark.parametrize("args", PATTERNS, ids=lambda a: repr(a)[:60])
def test_rg_candidates_cover_every_file_python_matches(
    project: Path, logged_rg: tuple[Ripgrep, Path, Path], args: dict[str, Any]
) -> None:
    from koda.tools import grep_regex

    source = re.escape(args["pattern"]) if args.get("literal") else args["pattern"]
    flags = re.IGNORECASE if args.get("case_insensitive") else 0
    rg_pattern = grep_regex.for_ripgrep(source, flags)
    assert rg_pattern is not None, "every pattern here has an rg translation"
    listed = ripgrep.list_files(
        logged_rg[0], project, project, rg_pattern=rg_pattern, max_filesize=10**9
    )
    assert listed is not None
    regex = re.compile(source, flags)
    needed = set()
    for entry in walk(project, project):
        if entry.is_file and not entry.is_link:
            lines = text_lines(entry.path.read_bytes()) or []
            if any(regex.search(line) for line in lines):
                needed.add(entry.rel)
    assert needed <= set(listed)


def test_rg_really_answered(project: Path, logged_rg: tuple[Ripgrep, Path, Path]) -> None:
    """Runs last in this module: rg was called in both modes and never complained."""
    _, calls, errors = logged_rg
    logged = [line.split() for line in calls.read_text().splitlines()]
    assert any("--files-with-matches" in args for args in logged)
    assert any("--files" in args for args in logged)
    assert errors.read_text() == ""


async def test_an_ignore_line_rg_rejects_falls_back_to_python(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "sub").mkdir(parents=True)
    (root / ".gitignore").write_text("un{closed\n*.log\n")
    for name in ("un{closed", "a.log", "b.txt", "sub/c.txt"):
        (root / name).write_text("needle\n")
    assert RG is not None
    rg = Ripgrep(RG.executable, small_tree=0)
    assert ripgrep.list_files(rg, root, root) is None  # rg printed a parse error
    ctx = context(root)
    slow = (await Grep(None).run(ctx, {"pattern": "needle"})).output
    assert (await Grep(rg).run(ctx, {"pattern": "needle"})).output == slow
    assert slow == "b.txt:1:needle\nsub/c.txt:1:needle"


@pytest.mark.parametrize(("pattern", "flags", "expected"), [
    (r"\bfoo(?=x)", 0, "foo"),  # lookarounds and word boundaries widened away
    (r"foo$", 0, r"foo(?:\r?$)"),  # `$` before a CRLF's CR too
    (r"^a{5000}", 0, r"^(?:a){100,}"),  # huge counts widened
    (r"(a)\1", 0, r"(?:a)(?-u:[\x00-\x09\x0B-\xFF])*"),  # a backreference: any text
    ("k", re.IGNORECASE, r"[\x{4B}\x{6B}\x{212A}]"),  # Python folds the Kelvin sign
    ("a\nb", 0, r"a[^\x{0}-\x{D7FF}\x{E000}-\x{10FFFF}]b"),  # lines never hold "\n"
    ("\ufffd", 0, r"(?:[\x{FFFD}]|(?-u:[\x80-\xFF]){1,3})"),  # what invalid UTF-8 reads as
])  # fmt: skip
def test_rg_translation(pattern: str, flags: int, expected: str) -> None:
    from koda.tools import grep_regex

    assert grep_regex.for_ripgrep(pattern, flags) == expected


@pytest.mark.parametrize(("pattern", "whole"), [
    ("needle", True), (r"^\s*def\b", True), (r"(a|b)\1$", True),
    (r"foo(?=bar)", False), (r"(?<!x)y", False), (r"(?>a+)b", False), (r"a++", False),
    (r"\Aimport", False), (r"end\Z", False), (r"(?-m:^x)", False),
])  # fmt: skip
def test_whole_text_search_only_where_exact(pattern: str, whole: bool) -> None:
    from koda.tools import grep_regex

    assert (grep_regex.whole_text(pattern, 0) is not None) is whole
