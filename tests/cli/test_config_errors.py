"""koda.toml from the command line: a broken file stops the run before any model call, with the
file and line; a valid one's rules apply; the demo never reads the user's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import Koda, clean_env

READ_NOTES = [
    {"text": "", "tool_calls": [{"name": "Read", "args": {"path": "notes.txt"}}]},
    {"text": "Done."},
]


def user_file(koda: Koda, text: str) -> Path:
    koda.home.mkdir(exist_ok=True)
    path = koda.home / "koda.toml"
    path.write_text(text, encoding="utf-8")
    return path


def project_file(koda: Koda, text: str) -> Path:
    path = koda.project / ".koda" / "koda.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("where", ["user", "project"])
def test_a_broken_file_stops_the_run_with_file_and_line(koda: Koda, where: str) -> None:
    text = '[permissions]\nallow = ["Read"]\ndeny = ["Bsh(rm *)"]\n'
    path = user_file(koda, text) if where == "user" else project_file(koda, text)
    proc = koda.run("-p", "hi", script=READ_NOTES)
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith(
        f"koda: {path}: line 3: permissions.deny: unknown tool 'Bsh': did you mean Bash? "
        "Known tools: Read, Write,"
    )
    assert proc.stdout == ""
    assert koda.requests() == [], "no model call with a broken koda.toml"
    assert not (koda.home / "koda.db").exists(), "not even a session is made"


def test_a_toml_syntax_error_keeps_line_and_column(koda: Koda) -> None:
    path = project_file(koda, '[permissions]\nallow = ["Read"\nask = []\n')
    proc = koda.run("-p", "hi", script=READ_NOTES)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"koda: {path}: line 3, column 1: not valid TOML: ")


def test_json_modes_get_a_result_object(koda: Koda) -> None:
    path = user_file(koda, "[sandbox]\nmemory_mb = 0\n")
    proc = koda.run("-p", "hi", "--output-format", "json", script=READ_NOTES)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["type"] == "result" and result["is_error"] is True
    assert result["errors"] == [
        f"{path}: line 2: sandbox.memory_mb must be a whole number above 0, such as "
        "memory_mb = 4096 (got 0)"
    ]


def test_a_deny_rule_applies_in_a_headless_run(koda: Koda) -> None:
    path = project_file(koda, '[permissions]\ndeny = ["Read(notes.txt)"]\n')
    proc = koda.run("-p", "read the notes", "--yes", script=READ_NOTES)
    assert proc.returncode == 0, proc.stderr
    assert f"blocked Read: Read notes.txt (denied by Read(notes.txt) in {path})" in proc.stderr
    result = koda.requests()[1]["messages"][-1]
    assert result["role"] == "tool" and "koda.toml denies it" in result["content"]
    assert "hello from the notes" not in result["content"]


def test_the_demo_does_not_read_the_users_file(koda: Koda) -> None:
    user_file(koda, "this is not TOML\n")
    tmp = koda.base / "tmp"
    tmp.mkdir()
    env = clean_env({"KODA_HOME": str(koda.home), "TMPDIR": str(tmp)})
    proc = koda.run("demo", "--fast", env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "Hello, Ada!" in proc.stderr
