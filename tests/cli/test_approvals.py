"""Headless approvals: nobody is there to say yes, so what needs one is refused unless --yes."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Koda

WRITE = [
    {
        "text": "Writing the file.",
        "tool_calls": [{"name": "Write", "args": {"path": "out.txt", "content": "made by koda\n"}}],
    },
    {"text": "Finished."},
]
RM = [
    {
        "text": "Cleaning up.",
        "tool_calls": [{"name": "Bash", "args": {"command": "rm -rf somedir"}}],
    },
    {"text": "Finished."},
]


def tool_result(koda: Koda) -> dict[str, Any]:
    """The result of the one tool call, as the model read it in the next request."""
    requests = koda.requests()
    assert len(requests) == 2, requests
    message: dict[str, Any] = requests[1]["messages"][-1]
    assert message["role"] == "tool"
    return message


def test_safe_mode_refuses_a_write_and_tells_the_model_why(koda: Koda) -> None:
    proc = koda.run("-p", "write out.txt", "--mode", "safe", script=WRITE)
    assert proc.returncode == 0, proc.stderr
    assert not (koda.project / "out.txt").exists()
    result = tool_result(koda)
    assert result["tool_name"] == "Write"
    assert result["content"].startswith("Not run")
    assert "--yes" in result["content"] and "--mode auto" in result["content"]
    assert "needs approval" in proc.stderr
    assert proc.stdout == "Writing the file.\nFinished.\n"


def test_yes_approves_the_write(koda: Koda) -> None:
    proc = koda.run("-p", "write out.txt", "--mode", "safe", "--yes", script=WRITE)
    assert proc.returncode == 0, proc.stderr
    assert (koda.project / "out.txt").read_text(encoding="utf-8") == "made by koda\n"
    assert not tool_result(koda)["content"].startswith("Not run")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_plan_mode_blocks_even_with_yes(koda: Koda, how: str) -> None:
    if how == "flag":
        proc = koda.run("-p", "write out.txt", "--mode", "plan", "--yes", script=WRITE)
    else:
        proc = koda.run("-p", "write out.txt", "-y", script=WRITE, env=koda.env(KODA_MODE="plan"))
    assert proc.returncode == 0, proc.stderr
    assert not (koda.project / "out.txt").exists()
    assert "Plan mode" in tool_result(koda)["content"]
    assert "blocked" in proc.stderr


def test_auto_mode_writes_without_yes(koda: Koda) -> None:
    # Auto is only granted where commands run in the sandbox, so there is nothing to warn about.
    proc = koda.run("-p", "write out.txt", "--mode", "auto", script=WRITE)
    assert proc.returncode == 0, proc.stderr
    assert (koda.project / "out.txt").read_text(encoding="utf-8") == "made by koda\n"
    assert "sandbox" not in proc.stderr


def test_auto_mode_refuses_a_destructive_command_without_yes(koda: Koda) -> None:
    (koda.project / "somedir").mkdir()
    (koda.project / "somedir" / "keep.txt").write_text("precious\n", encoding="utf-8")
    proc = koda.run("-p", "clean up", "--mode", "auto", script=RM)
    assert proc.returncode == 0, proc.stderr
    assert (koda.project / "somedir" / "keep.txt").exists()
    result = tool_result(koda)
    assert result["content"].startswith("Not run")
    assert "--yes" in result["content"] and "--mode" not in result["content"]


def test_auto_mode_with_yes_runs_a_destructive_command(koda: Koda) -> None:
    (koda.project / "somedir").mkdir()
    proc = koda.run("-p", "clean up", "--mode", "auto", "--yes", script=RM)
    assert proc.returncode == 0, proc.stderr
    assert not (koda.project / "somedir").exists()
