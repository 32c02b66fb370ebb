"""The size of the first request a fresh session sends, from KODA_SCRIPT_LOG.

`koda -p hello --output-format json` runs once in a temp project with a temp KODA_HOME and a
one-reply script; KODA_SCRIPT_LOG records each request as one JSON line (ChatRequest.to_json(),
json.dumps with default settings). The first line is the first request. Reported, in bytes of
UTF-8: the whole line (without its newline), and the share of each part measured as that part
alone serialized the same way (`json.dumps(request[key])`): the system prompt, the tool
definitions (and each tool), the messages; "other" is the rest (keys, model, max_tokens, …).

The system prompt names the project root, so its size depends on the length of the temp
project path (shown). The size is deterministic, so one run is enough (--runs repeats it and
checks that the size does not change).

No target in this issue; a later issue caps the first request at 16 KB (16,384 bytes) with all
tools, so that figure is shown for reference.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import _bench as b

LATER_CAP = 16 * 1024
SCRIPT = [{"text": "Hello!", "usage": {"prompt": 10, "completion": 2}}]


def first_request(runs: int) -> tuple[str, list[int], int]:
    sizes = []
    line = ""
    root_len = 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="koda-bench-") as tmp:
            project = Path(tmp) / "project"
            project.mkdir()
            log = Path(tmp) / "requests.jsonl"
            env = b.clean_env(
                KODA_HOME=str(Path(tmp) / "home"),
                KODA_SCRIPT=json.dumps(SCRIPT),
                KODA_SCRIPT_LOG=str(log),
            )
            b.time_run(
                [b.koda_script(), "-p", "hello", "--output-format", "json"], env=env, cwd=project
            )
            lines = log.read_text(encoding="utf-8").splitlines()
            if len(lines) != 1:
                raise SystemExit(f"expected one logged request, got {len(lines)}")
            line = lines[0]
            sizes.append(len(line.encode("utf-8")))
            root_len = len(str(project.resolve()))
    return line, sizes, root_len


def size(value: Any) -> int:
    return len(json.dumps(value).encode("utf-8"))


def main() -> None:
    p = b.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()

    line, sizes, root_len = first_request(args.runs)
    if len(set(sizes)) != 1:
        b.progress(f"note: the first request's size varied between runs: {sizes}")
    request = json.loads(line)
    total = len(line.encode("utf-8"))
    system, tools, messages = (
        size(request["system"]),
        size(request["tools"]),
        size(request["messages"]),
    )
    per_tool = {t["name"]: size(t) for t in request["tools"]}

    result = b.Result("first_request", b.command(__file__))
    result.add(
        "first request, total",
        total,
        unit="bytes",
        target="none yet (later: <= 16 KB)",
        note=f"{total / LATER_CAP:.0%} of the later 16 KB cap; {len(request['tools'])} tools",
    )
    result.add(
        "  system prompt",
        system,
        unit="bytes",
        note=f"{len(request['system'])} chars, includes a {root_len}-char project path",
    )
    result.add(
        "  tool definitions",
        tools,
        unit="bytes",
        note=", ".join(f"{n} {s:,}" for n, s in sorted(per_tool.items(), key=lambda kv: -kv[1])),
    )
    result.add(
        "  messages", messages, unit="bytes", note=f"{len(request['messages'])} message(s): 'hello'"
    )
    result.add(
        "  other (keys, model, limits)",
        total - system - tools - messages,
        unit="bytes",
        note=", ".join(k for k in request if k not in ("system", "tools", "messages")),
    )
    result.details = {"sizes": sizes, "per_tool_bytes": per_tool, "request": request}
    b.emit(result, args.json)


if __name__ == "__main__":
    main()
