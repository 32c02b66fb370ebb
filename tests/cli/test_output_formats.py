"""`--output-format text|json|stream-json`: what goes to stdout, what to stderr."""

from __future__ import annotations

import json
import re
from typing import Any

from koda.sandbox.status import sandbox_status

from .helpers import Koda

# One tool call (a real Read of notes.txt), then the final answer; usage as a provider reports it.
READ_THEN_ANSWER = [
    {
        "text": "Let me look.",
        "tool_calls": [{"name": "Read", "args": {"path": "notes.txt"}}],
        "usage": {"prompt": 120, "completion": 7},
    },
    {"text": "The notes say hello.", "chunk_size": 5, "usage": {"prompt": 300, "completion": 11}},
]

# What a run starts in without --mode: Auto where the sandbox works here, else Safe.
DEFAULT_MODE = "auto" if sandbox_status().available else "safe"
CLOSING_LINE = re.compile(r"^· (\d+) tokens · [\d.]+s · session ([0-9a-f]{8})$", re.M)


def test_text_answer_on_stdout_progress_on_stderr(koda: Koda) -> None:
    proc = koda.run("-p", "what do the notes say?", script=READ_THEN_ANSWER)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Let me look.\nThe notes say hello.\n"
    assert '• Read {"path": "notes.txt"}' in proc.stderr
    assert "✓ Read" in proc.stderr
    closing = CLOSING_LINE.findall(proc.stderr)
    assert closing, proc.stderr
    assert closing[-1][0] == str(120 + 7 + 300 + 11)
    assert proc.stderr.rstrip("\n").splitlines()[-1].startswith("· "), "the closing line is last"
    # The tool really ran: its output went back to the model.
    tool_result = koda.requests()[1]["messages"][-1]
    assert tool_result["role"] == "tool"
    assert "hello from the notes" in tool_result["content"]


def test_text_reports_a_failed_tool_on_stderr(koda: Koda) -> None:
    script = [
        {"text": "", "tool_calls": [{"name": "Read", "args": {"path": "missing.txt"}}]},
        {"text": "It is not there."},
    ]
    proc = koda.run("-p", "read missing.txt", script=script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "It is not there.\n"
    assert "✗ Read" in proc.stderr
    assert "missing.txt" in proc.stderr


def test_json_is_one_result_object(koda: Koda) -> None:
    proc = koda.run(
        "-p", "what do the notes say?", "--output-format", "json", script=READ_THEN_ANSWER
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    result = json.loads(lines[0])
    assert result["type"] == "result"
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == "The notes say hello."
    assert result["num_turns"] == 2
    assert result["usage"]["prompt"] == 420
    assert result["usage"]["completion"] == 18
    assert result["total_cost_usd"] is None, "no price table: the cost is unknown, not zero"
    assert result["errors"] == []
    assert (result["provider"], result["model"]) == ("scripted", "scripted")
    assert result["mode"] == DEFAULT_MODE
    assert isinstance(result["duration_ms"], int)
    assert [s["id"] for s in koda.sessions_json()] == [result["session_id"]]
    assert "Traceback" not in proc.stderr


def test_stream_json_lines(koda: Koda) -> None:
    proc = koda.run(
        "-p", "what do the notes say?", "--output-format", "stream-json", script=READ_THEN_ANSWER
    )
    assert proc.returncode == 0, proc.stderr
    events: list[dict[str, Any]] = [json.loads(line) for line in proc.stdout.splitlines()]
    types = [e["type"] for e in events]

    init = events[0]
    assert init["type"] == "init"
    assert {"Read", "Write", "Edit", "Bash"} <= set(init["tools"])
    assert (init["model"], init["provider"], init["mode"]) == ("scripted", "scripted", DEFAULT_MODE)
    assert init["cwd"] == str(koda.project.resolve())

    result = events[-1]
    assert result["type"] == "result"
    assert result["subtype"] == "success"
    assert result["session_id"] == init["session_id"]
    assert result["usage"]["prompt"] == 420
    assert result["usage"]["completion"] == 18
    assert result["result"] == "The notes say hello."

    middle = types[1:-1]
    assert middle[0] == "turn_start"
    assert middle[-1] == "turn_end"
    assert middle.count("turn_start") == middle.count("turn_end") == 1
    assert types.count("init") == types.count("result") == 1
    start = types.index("tool_call_start")
    done = types.index("tool_call_result")
    assert 0 < start < done < len(types) - 2
    assert events[start]["name"] == "Read"
    assert events[start]["args"] == {"path": "notes.txt"}
    assert events[done]["id"] == events[start]["id"]
    assert events[done]["ok"] is True
    assert "hello from the notes" in events[done]["output"]
    text = "".join(e["text"] for e in events if e["type"] == "text_delta")
    assert text == "Let me look.The notes say hello."
    assert [e["prompt"] for e in events if e["type"] == "usage"] == [120, 300]
    assert events[-2]["reason"]["kind"] == "complete"
