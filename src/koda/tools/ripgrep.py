"""Finding ripgrep and asking it for the files our own walk (ignore.walk) would yield.

rg is run so that it honours exactly the rules ignore.py implements: hidden files included,
SKIP_DIRS excluded (as override globs, which outrank every ignore file, like the walk's check),
.gitignore files honoured with or without a git repository, nothing read from above the search
path or from git's global excludes, and the project's .git/info/exclude plus the ignore files
of the search path's parents handed over as one explicit ignore file rooted at the project.
When that cannot be said to rg (a parent holds a .ignore or .rgignore), when rg reports a
problem (a pattern or ignore line it cannot parse) or when it fails, the answer is None and the
caller walks in Python: slower, never different.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from koda.tools.ignore import SKIP_DIRS, Ignores, path_key, walk

# The flags used below are all there from ripgrep 11 (--no-require-git came with it).
MIN_VERSION = (11, 0)
# A tree with at most this many files is walked in process: starting rg costs more.
SMALL_TREE = 300
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Ripgrep:
    executable: str
    small_tree: int = SMALL_TREE  # tests set 0 to always use rg


def files(
    rg: Ripgrep | None,
    root: Path,
    base: Path,
    *,
    rg_pattern: Callable[[], str | None] = lambda: None,
    max_filesize: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[str]:
    """Project-relative paths of the regular files walk() yields under `base`, in its order.

    Symlinks are left out, as rg leaves them out. When rg is used and `rg_pattern()` gives a
    pattern (see grep_regex), files rg finds no match in, or larger than `max_filesize`, are
    left out too: the caller reads each file anyway and must judge matches and size itself.
    Trees of up to `rg.small_tree` files are walked in Python, where that is quicker.
    """
    walked = (e.rel for e in walk(root, base, should_stop=should_stop) if e.is_file)
    if rg is None:
        return list(walked)
    first = list(itertools.islice(walked, rg.small_tree + 1))
    if len(first) <= rg.small_tree:
        return first
    pattern = rg_pattern()
    found = list_files(
        rg,
        root,
        base,
        rg_pattern=pattern,
        max_filesize=max_filesize if pattern is not None else None,
        should_stop=should_stop,
    )
    if found is None:
        return first + list(walked)
    return sorted(found, key=path_key)


@functools.cache
def find() -> Ripgrep | None:
    """rg from PATH, else the one a `ripgrep` wheel put next to this Python; None if neither."""
    candidates = [shutil.which("rg"), _beside_python()]
    for candidate in candidates:
        if candidate and _usable(candidate):
            return Ripgrep(candidate)
    return None


def _beside_python() -> str | None:
    scripts = sysconfig.get_path("scripts")
    exe = Path(scripts) / ("rg.exe" if os.name == "nt" else "rg")
    return str(exe) if exe.is_file() else None


@functools.cache
def _usable(executable: str) -> bool:
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return False
    version = re.match(r"ripgrep (\d+)\.(\d+)", out)
    return version is not None and (int(version[1]), int(version[2])) >= MIN_VERSION


def list_files(
    rg: Ripgrep,
    root: Path,
    base: Path,
    *,
    rg_pattern: str | None = None,
    max_filesize: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[str] | None:
    """Project-relative paths of the regular files under the directory `base`, in no order.

    With `rg_pattern`, only files with a line it matches (binary files, which hold a NUL byte,
    left out); with `max_filesize`, only files no larger. None: rg could not answer exactly.
    """
    explicit = Ignores.above(root, base).as_one_file()
    if explicit is None:
        return None
    args = [rg.executable, *_COMMON_ARGS]
    if max_filesize is not None:
        args += ["--max-filesize", str(max_filesize)]
    stdin = None
    if rg_pattern is None:
        args.append("--files")
    else:
        # Patterns go through stdin: a pattern with big classes can exceed argv limits.
        args += ["--files-with-matches", "--encoding", "none", "--file", "-"]
        stdin = (rg_pattern + "\n").encode("utf-8")
    rel = base.relative_to(root).as_posix()
    with contextlib.ExitStack() as stack:
        if explicit:
            rules = stack.enter_context(tempfile.NamedTemporaryFile(prefix="koda-rg-"))
            rules.write(explicit.encode("utf-8", "surrogateescape"))
            rules.flush()
            args += ["--ignore-file", rules.name]
        output = _run([*args, "--", rel], root, stdin, should_stop)
    if output is None:
        return None
    return [os.fsdecode(raw).removeprefix("./") for raw in output.split(b"\0") if raw]


_COMMON_ARGS = [
    "--no-config",
    "--hidden",
    "--no-require-git",
    "--no-ignore-parent",
    "--no-ignore-exclude",
    "--no-ignore-global",
    "--null",
    "--color",
    "never",
    *(arg for name in sorted(SKIP_DIRS) for arg in ("--glob", f"!{name}/")),
]


def _run(
    args: list[str], cwd: Path, stdin: bytes | None, should_stop: Callable[[], bool]
) -> bytes | None:
    """rg's stdout, or None if it failed, was stopped, or disagreed with us.

    rg reports files it cannot read as "...: <reason> (os error N)"; the walk skips those too.
    Anything else on stderr is a pattern or an ignore-file line rg could not parse (and so
    reads differently from Python), and the answer is not used.
    """
    try:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError:
        return None
    data = stdin
    while True:
        try:
            out, err = proc.communicate(data, timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            data = None  # sent with the first call; communicate() keeps the rest
            if should_stop():
                proc.kill()
                proc.communicate()
                return None
    if should_stop():
        return None
    complaints = [
        line for line in err.decode("utf-8", "replace").splitlines() if "(os error" not in line
    ]
    # 0: found something, 1: found nothing, 2: some error, reported on stderr.
    if proc.returncode not in (0, 1, 2) or complaints:
        return None
    return out
