"""Shared helpers for the benchmark scripts (stdlib only).

Every script finds the repository from its own location, runs Python as `sys.executable`, keeps
its sessions in a temporary KODA_HOME and its projects in temporary directories, and reports
medians. A result is a list of rows: metric, value, unit, target text and pass/fail (None when the
row is for information only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SRC = REPO / "src"
PYTHON = sys.executable


def command(script: str, *args: str) -> str:
    """How to run `script` again, as typed in the repo root (no machine paths)."""
    exe = Path(PYTHON)
    try:
        shown = exe.relative_to(REPO).as_posix() if exe.is_absolute() else exe.name
    except ValueError:
        shown = "python"
    return " ".join([shown, f"benchmarks/{Path(script).name}", *args])


def ensure_importable() -> None:
    """Make `import koda` work even when the running Python has not installed it."""
    try:
        import koda  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(SRC))


def koda_script() -> str:
    """The `koda` console script next to this Python (the venv's), else the one on PATH."""
    here = Path(PYTHON).parent / ("koda.exe" if os.name == "nt" else "koda")
    if here.exists():
        return str(here)
    import shutil

    found = shutil.which("koda")
    if found is None:
        raise SystemExit("no `koda` console script next to this Python; install Koda in it first")
    return found


def rel(path: str | Path) -> str:
    """A path as shown in reports: relative to the repo when inside it, never machine-specific."""
    p = Path(path)
    try:
        return p.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return p.name


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a measured `koda` process: no provider keys, no KODA_* leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KODA_")
        and not k.endswith("_API_KEY")
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(extra)
    return env


def time_run(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    check: Callable[[subprocess.CompletedProcess[bytes]], None] | None = None,
) -> float:
    """Wall time in ms of one subprocess, from spawn to exit, output captured."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(
            f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stderr.decode(errors='replace')[-2000:]}"
        )
    if check is not None:
        check(proc)
    return elapsed


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """min–max, for the detail columns."""
    return f"{min(values):.1f}–{max(values):.1f}"


@dataclass
class Row:
    metric: str
    value: float | int | str
    unit: str = "ms"
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Result:
    benchmark: str
    command: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kw: Any) -> Row:
        row = Row(*args, **kw)
        self.rows.append(row)
        return row

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "command": self.command,
            "machine": machine(),
            "rows": [asdict(r) for r in self.rows],
            "details": self.details,
        }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def fmt_value(value: float | int | str, unit: str) -> str:
    if isinstance(value, float):
        text = f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text} {unit}".strip()


def verdict(passed: bool | None) -> str:
    return "—" if passed is None else ("PASS" if passed else "FAIL")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
        for i, h in enumerate(headers)
    ]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


def print_result(result: Result) -> None:
    m = machine()
    print(
        f"== {result.benchmark}   ({result.command})   {m['date']}, Python {m['python']}, "
        f"{m['cpus']} CPUs, load average {m['loadavg_1m']}"
    )
    rows = [
        (r.metric, fmt_value(r.value, r.unit), r.target or "—", verdict(r.passed), r.note)
        for r in result.rows
    ]
    print(table(("metric", "figure", "target", "result", "note"), rows))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return p


def emit(result: Result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print_result(result)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
