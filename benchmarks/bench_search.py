"""Grep and Glob over the Python standard library against `rg` run directly; Read and Edit of 50 MB.

Search: the running Python's standard library (`sysconfig.get_paths()["stdlib"]`) is copied into
a temp dir (without `__pycache__` and `site-packages`), so the only ignore file is the
`.gitignore` this script writes at its root. Each case runs three ways, interleaved round by
round after one warm-up round:

- Koda's tool with ripgrep: `await Grep(rg).run(ctx, args)` in this process (rg found as Koda
  finds it); it asks rg for the candidate files, then reads those in Python;
- Koda's tool without ripgrep: `Grep(None)`, the pure-Python fallback;
- `rg` alone in a subprocess, same pattern and options, printing every match, with the flags
  that make it search the files Koda searches (SAME_FILES below).

The figure is median(Koda) / median(rg alone). Koda's output is capped (800 lines at the
400k-token window used here) where rg prints everything; the script checks that both find the
same lines up to that cap. Glob is the same against `rg --files --glob`. The first call in a
process also pays once for Python's character tables that the rg translation of \\w or of
case-insensitive patterns needs; that first call is shown in the notes.

Read/Edit: a generated 50 MB text file (numbered lines of 79 bytes) in a temp project, through
the tools' public run(): Read with the default caps (a fresh file tracker each round, so no
"unchanged" shortcut), then Edit of one unique line near the end (after that Read, as the model
would; each round edits the line back or forth).
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _bench as b

b.ensure_importable()

from koda.cancel import CancelToken  # noqa: E402
from koda.tools import ripgrep  # noqa: E402
from koda.tools.base import ToolContext  # noqa: E402
from koda.tools.edit import Edit  # noqa: E402
from koda.tools.glob import Glob  # noqa: E402
from koda.tools.grep import Grep  # noqa: E402
from koda.tools.ignore import SKIP_DIRS  # noqa: E402
from koda.tools.read import Read  # noqa: E402

CONTEXT_WINDOW = 400_000
BIG_FILE_MB = 50

# (label, Grep args, the same search as rg arguments)
GREP_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("literal, rare", {"pattern": "frozenset(", "literal": True}, ["-F", "frozenset("]),
    ("regex, common", {"pattern": r"def __init__\(self"}, [r"def __init__\(self"]),
    ("regex with \\w and a glob", {"pattern": r"^class \w+\(.*Error\)", "glob": "*.py"},
     ["--glob", "*.py", r"^class \w+\(.*Error\)"]),
    ("case-insensitive", {"pattern": "todo", "case_insensitive": True}, ["-i", "todo"]),
    ("no match", {"pattern": "zqxjv_absent"}, ["zqxjv_absent"]),
    ("context 2", {"pattern": "raise NotImplementedError", "context": 2},
     ["-C", "2", "raise NotImplementedError"]),
]  # fmt: skip
GLOB_CASES = ["**/*.py", "**/test_*.py", "**/*.{txt,json}"]


class Tracker:
    """A file tracker like the engine's, in memory."""

    def __init__(self) -> None:
        self.reads: dict[Path, str] = {}

    def record_created(self, path: Path) -> None: ...

    def is_owned(self, path: Path) -> bool:
        return False

    def record_read(self, path: Path, digest: str) -> None:
        self.reads[path] = digest

    def read_digest(self, path: Path) -> str | None:
        return self.reads.get(path)


def context(root: Path) -> ToolContext:
    return ToolContext(
        project_root=root,
        cancel=CancelToken(),
        file_tracker=Tracker(),
        context_window=CONTEXT_WINDOW,
    )


def copy_stdlib(dest: Path) -> tuple[int, int]:
    source = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(
        source,
        dest,
        ignore=shutil.ignore_patterns("__pycache__", "site-packages", "dist-packages"),
        symlinks=True,
    )
    (dest / ".gitignore").write_text("*.exe\n*.pem\nidlelib/Icons/\n", encoding="utf-8")
    files = [p for p in dest.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# rg is told to search the files Koda searches: hidden ones too, .gitignore without a git repo,
# and not the build/cache directories Koda always skips (the stdlib has a `venv` package).
SAME_FILES = [
    "--hidden",
    "--no-require-git",
    *(arg for name in sorted(SKIP_DIRS) for arg in ("--glob", f"!{name}/")),
]


def rg_command(rg_args: list[str]) -> str:
    return "rg " + " ".join(shlex.quote(a) for a in rg_args)


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = await call()
    return (time.perf_counter() - start) * 1000, value


def rg_direct(exe: str, cwd: Path, args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [exe, "--no-config", *SAME_FILES, *args],
        cwd=cwd,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode not in (0, 1):
        raise SystemExit(f"rg failed: {proc.stderr.decode(errors='replace')}")
    return elapsed, proc.stdout.decode("utf-8", "replace")


@dataclass
class Case:
    label: str
    fast: Any  # the tool with rg
    slow: Any  # the tool without
    args: dict[str, Any]
    rg_args: list[str]
    cold: float = 0.0
    times: dict[str, list[float]] = field(
        default_factory=lambda: {"with rg": [], "without rg": [], "rg alone": []}
    )


def cases(rg: ripgrep.Ripgrep) -> list[Case]:
    found = [
        Case(f"Grep {label}", Grep(rg), Grep(None), args, ["-n", "--no-heading", *rg_args])
        for label, args, rg_args in GREP_CASES
    ]
    found += [
        Case(f"Glob {pattern}", Glob(rg), Glob(None), {"pattern": pattern},
             ["--files", "--glob", pattern])
        for pattern in GLOB_CASES
    ]  # fmt: skip
    return found


async def search(result: b.Result, rounds: int, rg: ripgrep.Ripgrep) -> None:
    with tempfile.TemporaryDirectory(prefix="koda-bench-") as tmp:
        root = Path(tmp) / "stdlib"
        count, size = copy_stdlib(root)
        b.progress(f"stdlib copy: {count:,} files, {size / 2**20:.1f} MB")
        result.details["tree"] = {"files": count, "bytes": size}
        ctx = context(root)
        todo = cases(rg)
        # Round 0 is the warm-up; its Koda-with-rg time is the "first call" figure.
        for round_no in range(rounds + 1):
            for case in todo:
                t_fast, fast = await timed(lambda c=case: c.fast.run(ctx, c.args))
                t_slow, slow = await timed(lambda c=case: c.slow.run(ctx, c.args))
                t_raw, raw = rg_direct(rg.executable, root, case.rg_args)
                if fast.output != slow.output:
                    raise SystemExit(f"{case.label}: the outputs with and without rg differ")
                if round_no == 0:
                    case.cold = t_fast
                    check(case.label, fast.output, raw)
                    continue
                case.times["with rg"].append(t_fast)
                case.times["without rg"].append(t_slow)
                case.times["rg alone"].append(t_raw)
        for case in todo:
            ours = b.median(case.times["with rg"])
            python = b.median(case.times["without rg"])
            alone = b.median(case.times["rg alone"])
            result.add(
                f"{case.label}: with rg / rg alone",
                ours / alone,
                unit="x",
                note=f"{ours:.1f} vs {alone:.1f} ms; first call {case.cold:.1f} ms",
            )
            result.add(
                f"{case.label}: without rg / rg alone",
                python / alone,
                unit="x",
                note=f"{python:.1f} ms",
            )
            result.details.setdefault("cases", {})[case.label] = {
                "args": case.args,
                "rg": rg_command(case.rg_args),
                "ms": case.times,
                "first_call_ms": case.cold,
            }


def check(label: str, ours: str, raw: str) -> None:
    """Koda found what rg found: the same files (Glob), the same first lines in path order up
    to Koda's cap (Grep)."""
    mine = [line for line in ours.splitlines() if not line.startswith("[")]
    if label.startswith("Glob"):
        # Koda lists newest first: compare as sets.
        if not set(mine) <= set(raw.splitlines()) or (
            "more files not shown" not in ours and set(mine) != set(raw.splitlines())
        ):
            raise SystemExit(f"{label}: Koda and rg list different files")
        return
    if ours.startswith("No matches"):
        mine = []
    elif "context" in label:
        return

    def where(line: str) -> tuple[tuple[str, ...], int]:
        path, number = line.split(":", 2)[:2]
        return tuple(path.split("/")), int(number)

    expected = sorted((where(line) for line in raw.splitlines()), key=lambda w: w)
    if [where(line) for line in mine] != expected[: len(mine)] or (
        "capped" not in ours and len(mine) != len(expected)
    ):
        raise SystemExit(f"{label}: Koda's matching lines differ from rg's")


def make_big_file(path: Path) -> str:
    def line(n: int) -> str:
        return f"line {n:08d}: the quick brown fox jumps over the lazy dog, 0123456789."

    count = -(-BIG_FILE_MB * 2**20 // (len(line(0)) + 1))
    with path.open("w", encoding="utf-8") as f:
        f.writelines(line(n) + "\n" for n in range(count))
    return line(count - 100)


async def read_edit(result: b.Result, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="koda-bench-") as tmp:
        root = Path(tmp)
        big = root / "big.txt"
        target = make_big_file(big)
        size = big.stat().st_size
        edited = target.replace("lazy dog", "lazy cat")
        reads, edits, raw_reads = [], [], []
        for round_no in range(rounds + 1):
            ctx = context(root)
            start = time.perf_counter()
            big.read_bytes()
            raw_ms = (time.perf_counter() - start) * 1000
            read_ms, read = await timed(lambda c=ctx: Read().run(c, {"path": "big.txt"}))
            old, new = (target, edited) if round_no % 2 == 0 else (edited, target)
            args = {"path": "big.txt", "old_string": old, "new_string": new}
            edit_ms, edit = await timed(lambda c=ctx, a=args: Edit().run(c, a))
            if not read.ok or not edit.ok:
                raise SystemExit(f"Read/Edit failed: {read.output[:200]} / {edit.output[:200]}")
            if round_no:
                reads.append(read_ms)
                edits.append(edit_ms)
                raw_reads.append(raw_ms)
        result.details["big_file"] = {"bytes": size, "read_ms": reads, "edit_ms": edits}
        note = f"{size / 2**20:.1f} MiB, {len(read.output):,} chars returned; n={rounds}"
        result.add("Read of a 50 MB file (default caps)", b.median(reads), note=note)
        result.add(
            "Edit of one line near the end of it",
            b.median(edits),
            note=f"after a Read; n={rounds}; plain read_bytes() alone {b.median(raw_reads):.1f} ms",
        )


def main() -> None:
    p = b.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    rg = ripgrep.find()
    if rg is None:
        raise SystemExit("ripgrep (rg) is needed for the comparison: install it first")
    result = b.Result("search", b.command(__file__))
    version = subprocess.run([rg.executable, "--version"], capture_output=True, text=True)
    result.details["rg"] = version.stdout.splitlines()[0]
    asyncio.run(search(result, args.runs, rg))
    asyncio.run(read_edit(result, max(3, args.runs // 2)))
    b.emit(result, args.json)


if __name__ == "__main__":
    main()
