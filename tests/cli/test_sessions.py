"""Continuing and resuming sessions, and `koda sessions list|show|export|delete`."""

from __future__ import annotations

import json
import re
from typing import Any

from .helpers import Koda, roles

PROMPT = "Summarise the project notes for me"
READ_THEN_ANSWER = [
    {
        "text": "Reading the notes.",
        "tool_calls": [{"name": "Read", "args": {"path": "notes.txt"}}],
        "usage": {"prompt": 120, "completion": 7},
    },
    {"text": "They say hello.", "usage": {"prompt": 300, "completion": 11}},
]


def run_json(koda: Koda, *args: str, script: list[Any]) -> dict[str, Any]:
    proc = koda.run(*args, "--output-format", "json", script=script)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def one_session(koda: Koda) -> str:
    """A session with a prompt, a tool call and an answer; its id."""
    return str(run_json(koda, "-p", PROMPT, script=READ_THEN_ANSWER)["session_id"])


# -- continue and resume ---------------------------------------------------------------------


def test_continue_sends_the_earlier_conversation(koda: Koda) -> None:
    first = run_json(koda, "-p", "first question", script=[{"text": "first answer"}])
    second = run_json(koda, "-c", "-p", "second question", script=[{"text": "second answer"}])
    assert second["session_id"] == first["session_id"]
    assert second["result"] == "second answer"
    messages = koda.requests()[0]["messages"]
    assert roles(messages) == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", "second question"),
    ]
    assert len(koda.sessions_json()) == 1


def test_continue_picks_the_latest_session_of_this_project(koda: Koda) -> None:
    run_json(koda, "-p", "older", script=[{"text": "a"}])
    latest = run_json(koda, "-p", "newer", script=[{"text": "b"}])
    other = koda.base / "other"
    other.mkdir()
    koda.run("-p", "other project", script=[{"text": "c"}], cwd=other)
    resumed = run_json(koda, "-c", "-p", "again", script=[{"text": "d"}])
    assert resumed["session_id"] == latest["session_id"]
    assert roles(koda.requests()[0]["messages"])[0] == ("user", "newer")


def test_resume_by_prefix(koda: Koda) -> None:
    alpha = run_json(koda, "-p", "alpha task", script=[{"text": "alpha done"}])["session_id"]
    run_json(koda, "-p", "beta task", script=[{"text": "beta done"}])
    resumed = run_json(koda, "-r", alpha[:6], "-p", "more alpha", script=[{"text": "ok"}])
    assert resumed["session_id"] == alpha
    assert roles(koda.requests()[0]["messages"]) == [
        ("user", "alpha task"),
        ("assistant", "alpha done"),
        ("user", "more alpha"),
    ]


def test_resume_unknown_prefix_exits_2(koda: Koda) -> None:
    one_session(koda)
    proc = koda.run("-r", "zzzz", "-p", "carry on", script=[{"text": "never"}])
    assert proc.returncode == 2
    assert "zzzz" in proc.stderr
    assert proc.stdout == ""
    assert koda.requests() == []


def test_continue_without_an_earlier_session_exits_2(koda: Koda) -> None:
    proc = koda.run("-c", "-p", "carry on", script=[{"text": "never"}])
    assert proc.returncode == 2
    assert "no earlier session" in proc.stderr
    assert koda.requests() == []
    assert koda.sessions_json() == [], "a failed --continue must not leave an empty session"


# -- koda sessions -----------------------------------------------------------------------------


def test_list_shows_the_session_titled_from_the_first_prompt(koda: Koda) -> None:
    sid = one_session(koda)
    run_json(koda, "-c", "-p", "a later prompt", script=[{"text": "fine"}])
    proc = koda.run("sessions", "list")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith(sid[:8])
    assert line.endswith(PROMPT)
    assert "later prompt" not in proc.stdout
    listed = koda.sessions_json()
    assert [(s["id"], s["title"]) for s in listed] == [(sid, PROMPT)]
    assert listed[0]["messages"] == 6
    assert listed[0]["tokens"] > 0


def test_list_is_per_project_unless_all(koda: Koda) -> None:
    mine = one_session(koda)
    other = koda.base / "other"
    other.mkdir()
    koda.run("-p", "elsewhere work", script=[{"text": "x"}], cwd=other)
    assert [s["id"] for s in koda.sessions_json()] == [mine]
    everything = koda.sessions_json("--all")
    assert len(everything) == 2
    assert {s["title"] for s in everything} == {PROMPT, "elsewhere work"}
    proc = koda.run("sessions", "list", "--all")
    assert "elsewhere work" in proc.stdout and PROMPT in proc.stdout
    empty = koda.base / "empty"
    empty.mkdir()
    proc = koda.run("sessions", "list", cwd=empty)
    assert proc.returncode == 0
    assert "No sessions" in proc.stdout


def test_show_prints_tokens_and_unknown_cost(koda: Koda) -> None:
    sid = one_session(koda)
    proc = koda.run("sessions", "show", sid[:8])
    assert proc.returncode == 0, proc.stderr
    assert PROMPT in proc.stdout
    assert sid in proc.stdout
    assert re.search(r"tokens:\s+420 in · 18 out", proc.stdout), proc.stdout
    assert re.search(r"cost:\s+unknown", proc.stdout), proc.stdout
    data = json.loads(koda.run("sessions", "show", sid, "--json").stdout)
    assert data["cost"] == "unknown"
    assert data["usage"]["prompt"] == 420
    assert data["messages"] == 4


def test_export_markdown(koda: Koda) -> None:
    sid = one_session(koda)
    proc = koda.run("sessions", "export", sid[:8])
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert md.startswith(f"# {PROMPT}\n")
    assert PROMPT in md
    assert "Reading the notes." in md
    assert "They say hello." in md
    assert "**Tool call** `Read`" in md
    assert '"path": "notes.txt"' in md
    assert "hello from the notes" in md, "the tool's result is part of the export"
    assert md.index("Reading the notes.") < md.index("They say hello.")


def test_export_json(koda: Koda) -> None:
    sid = one_session(koda)
    proc = koda.run("sessions", "export", sid, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["session"]["id"] == sid
    messages = data["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[0]["content"] == PROMPT
    assert messages[1]["tool_calls"][0]["name"] == "Read"
    assert messages[-1]["content"] == "They say hello."
    assert all(m["complete"] for m in messages)


def test_export_to_a_file(koda: Koda) -> None:
    sid = one_session(koda)
    target = koda.base / "out.md"
    proc = koda.run("sessions", "export", sid[:8], "-o", str(target))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert target.read_text(encoding="utf-8") == koda.run("sessions", "export", sid).stdout
    bad = koda.run("sessions", "export", sid, "-o", str(koda.base / "no-such-dir" / "out.md"))
    assert bad.returncode == 1
    assert "cannot write" in bad.stderr


def test_delete(koda: Koda) -> None:
    keep = one_session(koda)
    gone = one_session(koda)
    proc = koda.run("sessions", "delete", gone, "--yes")
    assert proc.returncode == 0, proc.stderr
    assert gone[:8] in proc.stdout
    assert [s["id"] for s in koda.sessions_json()] == [keep]
    assert gone[:8] not in koda.run("sessions", "list").stdout
    assert koda.run("sessions", "show", gone).returncode == 2


def test_unknown_ids_exit_2(koda: Koda) -> None:
    one_session(koda)
    for action in (["delete", "nosuchid", "--yes"], ["show", "nosuchid"], ["export", "nosuchid"]):
        proc = koda.run("sessions", *action)
        assert proc.returncode == 2, action
        assert "nosuchid" in proc.stderr
        assert proc.stdout == ""
    assert len(koda.sessions_json()) == 1


def test_sessions_usage_errors_exit_2(koda: Koda) -> None:
    for action in ([], ["bogus"], ["show"]):
        proc = koda.run("sessions", *action)
        assert proc.returncode == 2, action
        assert "usage:" in proc.stderr


def test_resume_keeps_the_stored_mode_unless_told_otherwise(koda: Koda) -> None:
    write = [
        {"text": "", "tool_calls": [{"name": "Write", "args": {"path": "a.txt", "content": "x"}}]}
    ]
    run_json(koda, "-p", "plan it", "--mode", "plan", script=[{"text": "planned"}])
    proc = koda.run("-c", "-p", "now write", "--yes", script=[*write, {"text": "done"}])
    assert proc.returncode == 0, proc.stderr
    assert not (koda.project / "a.txt").exists(), "a resumed plan session must stay in plan mode"
    proc = koda.run("-c", "-p", "write", "--mode", "auto", script=[*write, {"text": "done"}])
    assert proc.returncode == 0, proc.stderr
    assert (koda.project / "a.txt").read_text() == "x"
