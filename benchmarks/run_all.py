"""Run every benchmark and print one combined table.

    python benchmarks/run_all.py              all five, default run counts
    python benchmarks/run_all.py --quick      few runs each: a smoke check, not figures to quote
    python benchmarks/run_all.py --json       the combined results as JSON
    python benchmarks/run_all.py --markdown   the combined table as Markdown (for README.md)

Each benchmark runs as its own process (`sys.executable benchmarks/NAME.py --json`), one after
the other. Exit status 1 if any target fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import _bench as b

BENCHMARKS = [
    ("bench_startup.py", ["--runs", "5", "--importtime-runs", "1"]),
    ("bench_headless_turn.py", ["--runs", "3"]),
    ("bench_step_overhead.py", ["--runs", "3"]),
    ("bench_resume.py", ["--runs", "3"]),
    ("bench_first_request.py", ["--runs", "1"]),
    ("bench_stream.py", ["--runs", "2", "--chunks", "2000", "--startup-runs", "3"]),
    ("bench_sandbox.py", ["--runs", "3"]),
    ("bench_proxy.py", ["--runs", "1"]),
]


def run(name: str, extra: list[str]) -> dict[str, Any]:
    b.progress(f"run_all: {name} {' '.join(extra)}".rstrip())
    start = time.perf_counter()
    proc = subprocess.run(
        [b.PYTHON, str(b.BENCH_DIR / name), "--json", *extra], capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"run_all: {name} failed with exit status {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["command"] = b.command(name, *extra)
    return result


def markdown(results: list[dict[str, Any]]) -> str:
    out = ["| benchmark | metric | figure | target | result | note |", "|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            cells = [
                r["benchmark"],
                row["metric"].strip(),
                b.fmt_value(row["value"], row["unit"]),
                row["target"] or "—",
                b.verdict(row["passed"]),
                row["note"],
            ]
            out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few runs each (a smoke check)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args()

    results = [run(name, quick if args.quick else []) for name, quick in BENCHMARKS]
    failed = [
        (r["benchmark"], row["metric"])
        for r in results
        for row in r["rows"]
        if row["passed"] is False
    ]
    if args.json:
        print(
            json.dumps({"machine": b.machine(), "quick": args.quick, "results": results}, indent=2)
        )
    elif args.markdown:
        print(markdown(results))
    else:
        m = b.machine()
        print(
            f"Koda benchmarks, {m['date']}, Python {m['python']}, {m['platform']}, {m['cpus']} CPUs"
            + (" (--quick: few runs, do not quote)" if args.quick else "")
        )
        rows = []
        for r in results:
            for row in r["rows"]:
                rows.append(
                    (
                        r["benchmark"],
                        row["metric"],
                        b.fmt_value(row["value"], row["unit"]),
                        row["target"] or "—",
                        b.verdict(row["passed"]),
                    )
                )
        print(b.table(("benchmark", "metric", "figure", "target", "result"), rows))
        print("\ncommands: " + "; ".join(str(r["command"]) for r in results))
    if failed:
        print("targets failed: " + "; ".join(f"{bn}: {m}" for bn, m in failed), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
