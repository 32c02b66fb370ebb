"""Every way of giving the headless prompt, and the usage errors (exit code 2)."""

from __future__ import annotations

import os
import subprocess

import pytest

from .helpers import Koda, koda_command

OK = [{"text": "ok"}]


def sent_prompt(koda: Koda) -> str:
    """The text of the user message the engine sent in its one request."""
    requests = koda.requests()
    assert len(requests) == 1, requests
    messages = requests[0]["messages"]
    assert [m["role"] for m in messages] == ["user"]
    content: str = messages[0]["content"]
    return content


def test_prompt_flag(koda: Koda) -> None:
    proc = koda.run("-p", "explain notes.txt", script=OK)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
    assert sent_prompt(koda) == "explain notes.txt"


def test_prompt_as_words(koda: Koda) -> None:
    proc = koda.run("explain", "notes.txt", "briefly", script=OK)
    assert proc.returncode == 0, proc.stderr
    assert sent_prompt(koda) == "explain notes.txt briefly"


@pytest.mark.parametrize("args", [["-p", "-"], ["-p"], []], ids=["dash", "bare-p", "piped"])
def test_prompt_from_stdin(koda: Koda, args: list[str]) -> None:
    proc = koda.run(*args, script=OK, input="review this change\n+ a line\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n"
    assert sent_prompt(koda).strip() == "review this change\n+ a line"


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (["-p", ""], None, "empty"),
        (["-p", "   "], None, "empty"),
        (["-p", "-"], " \n\t\n", "empty"),
        ([], None, "empty"),  # stdin is not a terminal, and has nothing in it
        (["--bogus", "-p", "x"], None, "unrecognized arguments: --bogus"),
        (["--mode", "bogus", "-p", "x"], None, "unknown mode 'bogus'"),
        (["-c", "-r", "abc", "-p", "x"], None, "either --continue or --resume"),
        (["-r", "", "-p", "x"], None, "--resume needs a session id"),
        (["--max-turns", "0", "-p", "x"], None, "must be 1 or more"),
        (["--output-format", "xml", "-p", "x"], None, "invalid choice"),
        (["-p", "-", "two"], "x", "do not give words as well"),
    ],
    ids=[
        "empty-flag",
        "blank-flag",
        "blank-stdin",
        "nothing",
        "unknown-flag",
        "bad-mode",
        "continue-and-resume",
        "empty-resume",
        "zero-turns",
        "bad-format",
        "stdin-and-words",
    ],
)
def test_bad_usage_exits_2(koda: Koda, args: list[str], input: str | None, message: str) -> None:
    proc = koda.run(*args, script=OK, input=input)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr
    assert proc.stdout == ""
    assert koda.requests() == [], "no model request may be sent on bad usage"


def test_unquoted_words_after_p_are_one_prompt(koda: Koda) -> None:
    proc = koda.run("-p", "fix", "the", "bug", script=OK)
    assert proc.returncode == 0, proc.stderr
    assert sent_prompt(koda) == "fix the bug"


def test_bad_mode_from_the_environment_exits_2(koda: Koda) -> None:
    proc = koda.run("-p", "x", script=OK, env=koda.env(KODA_MODE="sideways"))
    assert proc.returncode == 2
    assert "unknown mode 'sideways'" in proc.stderr
    assert koda.requests() == []


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_no_prompt_at_a_terminal_explains_instead_of_waiting(koda: Koda) -> None:
    primary, secondary = os.openpty()
    try:
        proc = subprocess.run(
            koda_command(),
            cwd=koda.project,
            env=koda.env(),
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 2
    assert "-p PROMPT" in proc.stderr
    assert "koda demo" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert koda.requests() == []


def test_project_root_flag_sets_where_tools_run(koda: Koda) -> None:
    elsewhere = koda.base / "elsewhere"
    elsewhere.mkdir()
    script = [
        {"text": "", "tool_calls": [{"name": "Read", "args": {"path": "notes.txt"}}]},
        {"text": "read it"},
    ]
    proc = koda.run(
        "-p", "read notes", "--project-root", str(koda.project), script=script, cwd=elsewhere
    )
    assert proc.returncode == 0, proc.stderr
    tool_result = koda.requests()[1]["messages"][-1]
    assert tool_result["role"] == "tool"
    assert "hello from the notes" in tool_result["content"]
    listed = koda.sessions_json("--project-root", str(koda.project))
    assert len(listed) == 1
    assert listed[0]["project_root"] == str(koda.project.resolve())
