"""Realistic stored history for the in-process benchmarks (stdlib only, deterministic).

A conversation is a run of exchanges of ten rows each:

    user prompt                                   200–500 characters
    4 × (assistant: a sentence + one tool call     text 60–200 chars, Read/Grep/Glob/Bash args
         tool: its result)                         300–500 characters of code-like lines
    assistant: the answer                          200–500 characters

Assistant rows carry token usage, as real ones do. Rows are written with the Store's own
`messages.insert` (one transaction per row, as the engine writes them). When `n` is not a multiple
of ten, the last row is made a plain assistant answer so the history ends cleanly.
"""

from __future__ import annotations

import random
from typing import Any

WORDS = (  # noqa: SIM905 - a sentence reads better than a list of words
    "the function returns a list of paths and the test checks that each one exists before we "
    "read it config parser session store message tool call result error handler retry backoff "
    "module import cache index query row column migration schema version provider model stream "
    "chunk token usage prompt history window budget limit file line offset pattern glob grep"
).split()
CODE = [
    "def load(path: Path) -> list[str]:",
    "    with open(path, encoding='utf-8') as fh:",
    "        return [line.rstrip() for line in fh]",
    "class SessionStore:",
    "    def __init__(self, conn: sqlite3.Connection) -> None:",
    "        self._conn = conn",
    "for row in rows:",
    "    if row.role == 'tool' and row.tool_call_id in open_calls:",
    "        history.append(to_message(row))",
    "assert result.ok, result.output",
    "src/koda/engine/turn.py:142:    reply = await self.query()",
    "tests/test_store.py::test_resume PASSED",
]
TOOLS = ("Read", "Grep", "Glob", "Bash")


def _text(rng: random.Random, low: int, high: int) -> str:
    size = rng.randint(low, high)
    words: list[str] = []
    length = 0
    while length < size:
        w = rng.choice(WORDS)
        words.append(w)
        length += len(w) + 1
    return (" ".join(words))[:size].rstrip() + "."


def _code(rng: random.Random, low: int, high: int) -> str:
    size = rng.randint(low, high)
    lines: list[str] = []
    length = 0
    n = 1
    while length < size:
        line = f"{n:>4}\t{rng.choice(CODE)}"
        lines.append(line)
        length += len(line) + 1
        n += 1
    return "\n".join(lines)[:size]


def _args(rng: random.Random, tool: str) -> dict[str, Any]:
    f = f"src/pkg/module_{rng.randint(1, 60)}.py"
    if tool == "Read":
        return {"path": f, "offset": rng.randint(1, 200), "limit": 120}
    if tool == "Grep":
        return {"pattern": rng.choice(WORDS) + r"\(", "path": "src", "glob": "*.py"}
    if tool == "Glob":
        return {"pattern": "**/*_" + rng.choice(WORDS) + ".py"}
    return {"command": f"python -m pytest -q tests/test_{rng.choice(WORDS)}.py"}


def rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """`n` rows as keyword arguments for `messages.insert` (role first)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    call = 0
    while len(out) < n:
        out.append({"role": "user", "content": _text(rng, 200, 500)})
        for _ in range(4):
            call += 1
            tool = rng.choice(TOOLS)
            call_id = f"toolu_{call:08d}"
            usage = {"prompt": 1000 + 40 * len(out), "completion": rng.randint(20, 200)}
            out.append(
                {
                    "role": "assistant",
                    "content": _text(rng, 60, 200),
                    "usage": usage,
                    "tool_calls": [{"id": call_id, "name": tool, "arguments": _args(rng, tool)}],
                }
            )
            out.append(
                {
                    "role": "tool",
                    "content": _code(rng, 300, 500),
                    "tool_call_id": call_id,
                    "tool_name": tool,
                    "tool_ok": True,
                }
            )
        usage = {"prompt": 1000 + 40 * len(out), "completion": rng.randint(50, 300)}
        out.append({"role": "assistant", "content": _text(rng, 200, 500), "usage": usage})
    out = out[:n]
    if out and not (out[-1]["role"] == "assistant" and "tool_calls" not in out[-1]):
        out[-1] = {
            "role": "assistant",
            "content": _text(rng, 200, 500),
            "usage": {"prompt": 1000, "completion": 100},
        }
    return out


def fill(db: Any, session_id: str, n: int, seed: int = 7) -> int:
    """Insert `n` realistic rows into `session_id` through the store; returns total characters."""
    chars = 0
    for r in rows(n, seed):
        kw = dict(r)
        role = kw.pop("role")
        content = kw.pop("content")
        chars += len(content)
        db.messages.insert(session_id, role, content, **kw)
    return chars
