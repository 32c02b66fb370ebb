"""Start-up: `koda --version` against bare `python -c pass`, and what `import koda` pulls in.

Three commands are run in turn, round after round (interleaved, so drift in machine load hits
all three alike), each as a fresh process, for --runs rounds (default 40):

    python -c pass                 the baseline: the same interpreter doing nothing
    koda --version                 the venv's console script
    python -m koda --version       the module entry point

Reported: the median wall time of each, and the added ms = median(koda) - median(python).
Target (issue): within 40 ms of bare Python.

Then `python -X importtime` is run for `-c pass`, `-m koda --version` and the console script
(--importtime-runs times each, default 5). Reported: the modules the koda command imports that bare
Python does not, with their median self and cumulative import times, and a check that none of the
heavy modules below is imported at all.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from typing import Any

import _bench as b

FORBIDDEN = (
    "rich",
    "prompt_toolkit",
    "pydantic",
    "httpx",
    "httpx2",
    "anthropic",
    "openai",
    "acp",
    "mcp",
    "asyncio",
    "sqlite3",
)
TARGET_MS = 40.0
IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def measure(runs: int, warmup: int, env: dict[str, str]) -> dict[str, list[float]]:
    koda = b.koda_script()
    commands = {
        "python -c pass": [b.PYTHON, "-c", "pass"],
        "koda --version": [koda, "--version"],
        "python -m koda --version": [b.PYTHON, "-m", "koda", "--version"],
    }

    def says_version(proc: subprocess.CompletedProcess[bytes]) -> None:
        if not proc.stdout.startswith(b"koda "):
            raise SystemExit(f"unexpected --version output: {proc.stdout!r}")

    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(warmup + runs):
        for name, cmd in commands.items():
            check = None if name == "python -c pass" else says_version
            t = b.time_run(cmd, env=env, check=check)
            if i >= warmup:
                times[name].append(t)
    return times


def import_times(cmd: list[str], env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """module -> (self µs, cumulative µs) from one `-X importtime` run."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    found: dict[str, tuple[int, int]] = {}
    for line in proc.stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            found[m.group(4)] = (int(m.group(1)), int(m.group(2)))
    return found


def importtime_report(runs: int, env: dict[str, str]) -> dict[str, Any]:
    base_cmd = [b.PYTHON, "-X", "importtime", "-c", "pass"]
    module_cmd = [b.PYTHON, "-X", "importtime", "-m", "koda", "--version"]
    script_cmd = [b.PYTHON, "-X", "importtime", b.koda_script(), "--version"]
    base: set[str] = set()
    samples: dict[str, list[tuple[int, int]]] = {}
    script_modules: set[str] = set()
    for _ in range(runs):
        base |= set(import_times(base_cmd, env))
        for name, t in import_times(module_cmd, env).items():
            samples.setdefault(name, []).append(t)
        script_modules |= set(import_times(script_cmd, env))
    all_modules = set(samples) | script_modules
    added = {
        name: (b.median([s for s, _ in ts]), b.median([c for _, c in ts]))
        for name, ts in samples.items()
        if name not in base
    }
    heavy = sorted(m for m in all_modules for f in FORBIDDEN if m == f or m.startswith(f + "."))
    top = sorted(added.items(), key=lambda kv: -kv[1][0])
    return {
        "modules_python_c_pass": len(base),
        "modules_python_m_koda": len(samples),
        "modules_koda_script": len(script_modules),
        "added_by_koda_script": sorted(script_modules - base),
        "added_by_koda": [{"module": m, "self_us": s, "cumulative_us": c} for m, (s, c) in top],
        "added_self_us_total": sum(s for s, _ in added.values()),
        "koda_modules": sorted(m for m in all_modules if m == "koda" or m.startswith("koda.")),
        "forbidden_checked": list(FORBIDDEN),
        "forbidden_found": heavy,
    }


def main() -> None:
    p = b.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=40, help="measured rounds (default 40)")
    p.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first (default 3)")
    p.add_argument("--importtime-runs", type=int, default=5)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="koda-bench-") as home:
        env = b.clean_env(KODA_HOME=home)
        b.progress(f"startup: {args.runs} interleaved rounds of 3 commands…")
        times = measure(args.runs, args.warmup, env)
        b.progress("startup: -X importtime…")
        imports = importtime_report(args.importtime_runs, env)

    result = b.Result("startup", b.command(__file__))
    base = b.median(times["python -c pass"])
    result.add(
        "python -c pass", base, note=f"n={args.runs}, range {b.spread(times['python -c pass'])} ms"
    )
    for name in ("koda --version", "python -m koda --version"):
        med = b.median(times[name])
        result.add(name, med, note=f"n={args.runs}, range {b.spread(times[name])} ms")
    for name in ("koda --version", "python -m koda --version"):
        added = b.median(times[name]) - base
        paired = b.median(
            [k - p for k, p in zip(times[name], times["python -c pass"], strict=True)]
        )
        result.add(
            f"{name}: added over bare Python",
            added,
            target=f"<= {TARGET_MS:.0f} ms",
            passed=added <= TARGET_MS,
            note=f"median of paired differences {paired:.1f} ms",
        )
    found = imports["forbidden_found"]
    result.add(
        "heavy modules imported by koda --version",
        len(found),
        unit="",
        target="0",
        passed=not found,
        note=", ".join(found) or "none of " + "/".join(FORBIDDEN),
    )
    result.add(
        "modules added over bare Python (-m koda)",
        len(imports["added_by_koda"]),
        unit="",
        note=f"their self import time: {imports['added_self_us_total'] / 1000:.1f} ms",
    )
    result.add(
        "modules added over bare Python (koda script)",
        len(imports["added_by_koda_script"]),
        unit="",
        note=", ".join(imports["added_by_koda_script"]),
    )
    result.details = {"times_ms": times, "importtime": imports}
    b.emit(result, args.json)
    if not args.json:
        print(
            "\nmodules `python -m koda --version` imports beyond `python -c pass` (median of "
            f"{args.importtime_runs} -X importtime runs), by self time:"
        )
        rows = [
            (m["module"], f"{m['self_us']:.0f}", f"{m['cumulative_us']:.0f}")
            for m in imports["added_by_koda"][:15]
        ]
        print(b.table(("module", "self µs", "cumulative µs"), rows))
        print(f"koda modules: {', '.join(imports['koda_modules'])}")


if __name__ == "__main__":
    main()
