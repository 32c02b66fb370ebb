"""Exit codes when things go wrong: limits, provider errors, bad scripts, a closed pipe."""

from __future__ import annotations

import json
import subprocess

from .helpers import Koda, clean_env, koda_command, write_script


def test_max_turns_stops_with_error_max_turns(koda: Koda) -> None:
    script = [
        {"text": "Looking.", "tool_calls": [{"name": "Read", "args": {"path": "notes.txt"}}]},
        {"text": "never sent"},
    ]
    proc = koda.run("-p", "look", "--max-turns", "1", "--output-format", "json", script=script)
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["subtype"] == "error_max_turns"
    assert result["is_error"] is True
    assert result["num_turns"] == 1
    assert len(koda.requests()) == 1


def test_max_turns_in_text_mode_says_so_on_stderr(koda: Koda) -> None:
    script = [
        {"text": "Looking.", "tool_calls": [{"name": "Read", "args": {"path": "notes.txt"}}]},
        {"text": "never sent"},
    ]
    proc = koda.run("-p", "look", "--max-turns", "1", script=script)
    assert proc.returncode == 1
    assert "limit of 1 model calls" in proc.stderr
    assert "never sent" not in proc.stdout


def test_provider_error_exits_1_with_its_message(koda: Koda) -> None:
    proc = koda.run("-p", "hi", script=[{"error": "auth", "message": "bad key"}])
    assert proc.returncode == 1
    assert "bad key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_provider_error_in_json(koda: Koda) -> None:
    script = [{"error": "auth", "message": "bad key"}]
    proc = koda.run("-p", "hi", "--output-format", "json", script=script)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert (result["type"], result["subtype"], result["is_error"]) == ("result", "error", True)
    assert result["errors"] == ["bad key"]
    assert "Traceback" not in proc.stderr


def test_a_retried_rate_limit_still_succeeds(koda: Koda) -> None:
    script = [{"error": "rate_limit", "retry_after": 0.05}, {"text": "ok after waiting"}]
    proc = koda.run("-p", "hi", script=script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok after waiting\n"
    assert "retrying" in proc.stderr
    assert len(koda.requests()) == 2


def test_script_running_out_is_an_error_not_a_crash(koda: Koda) -> None:
    script = [{"text": "", "tool_calls": [{"name": "Read", "args": {"path": "notes.txt"}}]}]
    proc = koda.run("-p", "hi", script=script)
    assert proc.returncode == 1
    assert "no reply left" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_script_json_exits_1_with_a_clear_message(koda: Koda) -> None:
    proc = koda.run("-p", "hi", script='[{"text": ')
    assert proc.returncode == 1
    assert "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert koda.requests() == []


def test_script_with_a_bad_reply_names_it(koda: Koda) -> None:
    proc = koda.run("-p", "hi", script=[{"text": "fine"}, {"txet": "typo"}])
    assert proc.returncode == 1
    assert "reply 2" in proc.stderr
    assert "txet" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert koda.requests() == [], "nothing runs before the script is checked"


def test_missing_script_file_exits_1(koda: Koda) -> None:
    proc = koda.run("-p", "hi", env=koda.env(KODA_SCRIPT=str(koda.base / "nope.json")))
    assert proc.returncode == 1
    assert "nope.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_provider_configured_explains_how(koda: Koda) -> None:
    env = clean_env({"KODA_HOME": str(koda.home)})
    proc = koda.run("-p", "hi", env=env)
    assert proc.returncode == 1
    assert "ANTHROPIC_API_KEY" in proc.stderr
    assert "koda demo" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_unknown_provider_exits_1(koda: Koda) -> None:
    proc = koda.run("-p", "hi", "--provider", "nonesuch", script=[{"text": "x"}])
    assert proc.returncode == 1
    assert "nonesuch" in proc.stderr
    assert "Traceback" not in proc.stderr


def run_with_stdout_closed(koda: Koda, args: list[str]) -> tuple[int, str]:
    """Run koda as `koda ARGS | head -c0` would: nobody reads its output."""
    proc = subprocess.Popen(
        [*koda_command(), *args],
        cwd=koda.project,
        env=koda.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode("utf-8", "replace")
    proc.stderr.close()
    return proc.wait(timeout=30), err


def test_closed_stdout_is_not_an_internal_error(koda: Koda) -> None:
    first = koda.run("-p", "hi", "--output-format", "json", script=[{"text": "answer"}])
    sid = json.loads(first.stdout)["session_id"]
    for args in (
        ["sessions", "list"],
        ["sessions", "export", sid, "--format", "json"],
        ["-p", "hi", "--output-format", "json"],
        ["-p", "hi", "--output-format", "stream-json"],
    ):
        code, err = run_with_stdout_closed(koda, args)
        assert "Traceback" not in err, (args, err)
        assert "internal error" not in err, (args, err)
        assert code == 1, (args, "the output was lost; that is not a success")


def test_closed_stdout_while_streaming_text_shows_no_traceback(koda: Koda) -> None:
    write_script(koda.script, [{"text": "x" * 200_000, "chunk_size": 4000}])
    code, err = run_with_stdout_closed(koda, ["-p", "a long answer"])
    assert code == 1
    assert "Traceback" not in err, err


def test_setup_failure_still_gives_json_readers_a_result(koda: Koda) -> None:
    proc = koda.run("-r", "nosuchsession", "-p", "hi", "--output-format", "json", script=[])
    assert proc.returncode == 2
    result = json.loads(proc.stdout)
    assert (result["type"], result["is_error"]) == ("result", True)
    assert "nosuchsession" in result["errors"][0]


def test_unknown_session_is_bad_usage_even_without_a_provider(koda: Koda) -> None:
    env = {k: v for k, v in koda.env().items() if k != "KODA_SCRIPT"}
    proc = koda.run("-r", "nosuchsession", "-p", "hi", env=env)
    assert proc.returncode == 2
    assert "nosuchsession" in proc.stderr
