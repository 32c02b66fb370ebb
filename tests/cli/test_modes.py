"""Trust modes at start: Auto by default where the sandbox works, Safe with a notice where it does
not, and an explicit Auto without a sandbox refused with how to get one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from koda.sandbox.status import sandbox_status

from .helpers import Koda

WRITE = [
    {"text": "", "tool_calls": [{"name": "Write", "args": {"path": "out.txt", "content": "x\n"}}]},
    {"text": "Finished."},
]
needs_sandbox = pytest.mark.skipif(
    not sandbox_status().available, reason="needs a working sandbox on this machine"
)


def without_bwrap(koda: Koda, **extra: str) -> dict[str, str]:
    """The environment of a machine without bubblewrap: PATH holds every program but bwrap."""
    bin_dir = koda.base / "bin-without-bwrap"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for directory in os.environ.get("PATH", "").split(os.pathsep):
            for name in os.listdir(directory) if os.path.isdir(directory) else []:
                link = bin_dir / name
                if name != "bwrap" and not link.exists():
                    link.symlink_to(Path(directory) / name)
    return koda.env(PATH=str(bin_dir), **extra)


def stream(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


@needs_sandbox
def test_the_default_is_auto_where_the_sandbox_works(koda: Koda) -> None:
    proc = koda.run("-p", "write", "--output-format", "stream-json", script=WRITE)
    assert proc.returncode == 0, proc.stderr
    events = stream(proc.stdout)
    assert events[0]["type"] == "init" and events[0]["mode"] == "auto"
    assert events[-1]["mode"] == "auto"
    assert (koda.project / "out.txt").exists(), "Auto writes without a --yes"
    assert not [e for e in events if e["type"] in ("warn", "approval_request")]


def test_without_a_sandbox_the_default_is_safe_with_a_notice(koda: Koda) -> None:
    env = without_bwrap(koda)
    proc = koda.run("-p", "write", "--output-format", "stream-json", script=WRITE, env=env)
    assert proc.returncode == 0, proc.stderr
    events = stream(proc.stdout)
    assert events[0]["mode"] == "safe" and events[-1]["mode"] == "safe"
    [warn] = [e for e in events if e["type"] == "warn"]
    assert warn["message"].startswith("Safe mode: this session would start in Auto mode")
    assert "bubblewrap (bwrap) is not installed" in warn["message"]
    assert not (koda.project / "out.txt").exists(), "Safe mode asks, and nobody is there"


def test_the_notice_goes_to_stderr_in_text_mode(koda: Koda) -> None:
    proc = koda.run("-p", "hi", script=[{"text": "hello"}], env=without_bwrap(koda))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello\n"
    assert "koda: warning: Safe mode: this session would start in Auto mode" in proc.stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_asking_for_auto_without_a_sandbox_is_refused(koda: Koda, how: str) -> None:
    if how == "flag":
        proc = koda.run("-p", "hi", "--mode", "auto", script=WRITE, env=without_bwrap(koda))
    else:
        proc = koda.run("-p", "hi", script=WRITE, env=without_bwrap(koda, KODA_MODE="yolo"))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("koda: Auto mode needs the sandbox, and bubblewrap (bwrap) is not")
    assert "To use Auto, install bubblewrap" in lines[0]
    assert proc.stdout == ""
    assert koda.requests() == [], "refused before any model call"
    assert not (koda.project / "out.txt").exists()


def test_the_refusal_is_a_result_object_in_json_modes(koda: Koda) -> None:
    for fmt in ("json", "stream-json"):
        proc = koda.run(
            "-p", "hi", "--mode", "auto", "--output-format", fmt, script=WRITE,
            env=without_bwrap(koda),
        )  # fmt: skip
        assert proc.returncode == 1
        [result] = stream(proc.stdout)
        assert result["type"] == "result" and result["is_error"] is True
        assert result["errors"][0].startswith("Auto mode needs the sandbox")


@pytest.mark.parametrize("mode", ["plan", "safe"])
def test_modes_below_auto_start_without_a_sandbox_and_without_a_notice(
    koda: Koda, mode: str
) -> None:
    proc = koda.run(
        "-p", "hi", "--mode", mode, "--output-format", "json", script=[{"text": "ok"}],
        env=without_bwrap(koda),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mode"] == mode
    assert "warning" not in proc.stderr


def test_mode_flag_wins_over_the_environment(koda: Koda) -> None:
    proc = koda.run(
        "-p", "write", "--mode", "plan", "--yes", script=WRITE, env=koda.env(KODA_MODE="auto")
    )
    assert proc.returncode == 0, proc.stderr
    assert not (koda.project / "out.txt").exists()
    assert "blocked" in proc.stderr


def test_a_bad_koda_mode_names_the_variable(koda: Koda) -> None:
    proc = koda.run("-p", "hi", script=WRITE, env=koda.env(KODA_MODE="sideways"))
    assert proc.returncode == 2
    assert "KODA_MODE: unknown mode 'sideways': use plan, safe or auto" in proc.stderr
    assert koda.requests() == []


@needs_sandbox
def test_a_resumed_auto_session_without_a_sandbox_continues_in_safe(koda: Koda) -> None:
    first = koda.run("-p", "hi", "--output-format", "json", script=[{"text": "hello"}])
    assert json.loads(first.stdout)["mode"] == "auto"
    proc = koda.run(
        "-c", "-p", "write", "--output-format", "stream-json", script=WRITE,
        env=without_bwrap(koda),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = stream(proc.stdout)
    assert events[0]["mode"] == "safe"
    [warn] = [e for e in events if e["type"] == "warn"]
    assert "this session was in Auto mode" in warn["message"]
    assert not (koda.project / "out.txt").exists()
