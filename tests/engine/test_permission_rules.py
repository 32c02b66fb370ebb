"""koda.toml rules in real turns: deny, then Plan mode, then ask, then allow, then the matrix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from koda.engine.commands import ApprovalDecision, ApprovalResponse, EngineCommand
from koda.engine.events import (
    ActionBlocked,
    ApprovalRequest,
    EngineEvent,
    ToolCallResult,
    TurnEnd,
)

if TYPE_CHECKING:
    from conftest import Harness


def user_rules(home: Path, text: str) -> Path:
    path = home / "koda.toml"
    path.write_text(text, encoding="utf-8")
    return path


def project_rules(harness: Harness, text: str) -> Path:
    path = harness.project / ".koda" / "koda.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def call(id: str, name: str, **args: Any) -> dict[str, Any]:
    return {"id": id, "name": name, "args": args}


def overwrite(id: str, content: str) -> dict[str, Any]:
    return call(id, "Write", path=".koda/koda.toml", content=content, overwrite=True)


def answer(*decisions: str) -> Callable[[EngineEvent], EngineCommand | None]:
    left = list(decisions)

    def react(event: EngineEvent) -> EngineCommand | None:
        if isinstance(event, ApprovalRequest):
            assert left, f"unexpected approval request: {event}"
            return ApprovalResponse(event.id, ApprovalDecision(left.pop(0)))  # type: ignore[arg-type]
        return None

    return react


def results(sink: Any) -> dict[str, ToolCallResult]:
    return {r.id: r for r in sink.of_type(ToolCallResult)}


def completed(sink: Any) -> bool:
    end = sink.events[-1]
    return isinstance(end, TurnEnd) and end.reason.kind == "complete"


async def test_deny_stops_a_read_only_call_and_tells_the_model(harness: Harness) -> None:
    (harness.project / ".env").write_text("API_KEY=hunter2\n")
    path = project_rules(harness, '[permissions]\ndeny = ["Read(.env)"]\n')
    session = harness.session(
        [
            {"tool_calls": [call("r1", "Read", path="hello.txt"), call("r2", "Read", path=".env")]},
            {"text": "I may not read it."},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "what is in .env?")
    assert completed(sink)
    done = results(sink)
    assert done["r1"].ok and "hello world" in done["r1"].output
    assert not done["r2"].ok and "hunter2" not in done["r2"].output
    assert "koda.toml denies it" in done["r2"].output and "Do not retry" in done["r2"].output
    [blocked] = sink.of_type(ActionBlocked)
    assert blocked.tool_name == "Read"
    assert blocked.reason == f"denied by Read(.env) in {path}"
    assert not sink.of_type(ApprovalRequest)
    # Results keep the order of the calls.
    assert [r.id for r in sink.of_type(ToolCallResult)] == ["r1", "r2"]


async def test_a_project_deny_beats_a_user_allow(harness: Harness, private_koda_home: Path) -> None:
    (harness.project / "keep.txt").write_text("precious\n")
    (harness.project / "junk.txt").write_text("junk\n")
    user_rules(private_koda_home, '[permissions]\nallow = ["Delete"]\n')
    project = project_rules(harness, '[permissions]\ndeny = ["Delete(keep.txt)"]\n')
    session = harness.session(
        [
            {"tool_calls": [call("d1", "Delete", path="junk.txt")]},
            {"tool_calls": [call("d2", "Delete", path="keep.txt")]},
            {"text": "done"},
        ],
        mode="safe",
    )
    sink = await harness.turn(session, "clean up")
    assert not sink.of_type(ApprovalRequest), "the user's allow covers the other delete"
    assert not (harness.project / "junk.txt").exists()
    assert (harness.project / "keep.txt").read_text() == "precious\n"
    assert [b.reason for b in sink.of_type(ActionBlocked)] == [
        f"denied by Delete(keep.txt) in {project}"
    ]


async def test_a_user_deny_beats_a_project_allow(harness: Harness, private_koda_home: Path) -> None:
    user = user_rules(private_koda_home, '[permissions]\ndeny = ["Bash(*rm *)"]\n')
    project_rules(harness, '[permissions]\nallow = ["Bash"]\n')
    (harness.project / "build").mkdir()
    session = harness.session(
        [
            {"tool_calls": [call("b1", "Bash", command="touch made.txt && rm -rf build")]},
            {"text": "ok"},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "go")
    assert (harness.project / "build").is_dir()
    assert not (harness.project / "made.txt").exists()
    [blocked] = sink.of_type(ActionBlocked)
    assert blocked.reason == f"denied by Bash(*rm *) in {user}"


async def test_allow_never_lifts_plan_mode(harness: Harness) -> None:
    project_rules(harness, '[permissions]\nallow = ["Write", "Bash(touch *)"]\n')
    session = harness.session(
        [
            {
                "tool_calls": [
                    call("w", "Write", path="a.txt", content="x"),
                    call("b", "Bash", command="touch b.txt"),
                ]
            },
            {"text": "planned"},
        ],
        mode="plan",
    )
    sink = await harness.turn(session, "write")
    assert not (harness.project / "a.txt").exists() and not (harness.project / "b.txt").exists()
    assert [b.reason for b in sink.of_type(ActionBlocked)] == [
        "plan mode allows read-only tools only"
    ] * 2


async def test_deny_is_said_before_plan_mode(harness: Harness) -> None:
    path = project_rules(harness, '[permissions]\ndeny = ["Write(secrets/**)"]\n')
    session = harness.session(
        [{"tool_calls": [call("w", "Write", path="secrets/k", content="x")]}, {"text": "ok"}],
        mode="plan",
    )
    sink = await harness.turn(session, "write")
    [blocked] = sink.of_type(ActionBlocked)
    assert blocked.reason == f"denied by Write(secrets/**) in {path}"


async def test_ask_asks_for_a_read_even_in_auto(harness: Harness) -> None:
    project_rules(harness, '[permissions]\nask = ["Read(src/**)"]\n')
    session = harness.session(
        [
            {
                "tool_calls": [
                    call("r1", "Read", path="src/app.py"),
                    call("r2", "Read", path="hello.txt"),
                ]
            },
            {"text": "ok"},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "read", answer("reject"))
    [request] = sink.of_type(ApprovalRequest)
    assert (request.tool_name, request.effect) == ("Read", "read_only")
    assert "src/app.py" in request.detail
    done = results(sink)
    assert not done["r1"].ok and "rejected" in done["r1"].output
    assert done["r2"].ok


async def test_ask_honours_approve_always(harness: Harness) -> None:
    project_rules(harness, '[permissions]\nask = ["Bash(git *)"]\n')
    session = harness.session(
        [
            {"tool_calls": [call("b1", "Bash", command="git --version")]},
            {"tool_calls": [call("b2", "Bash", command="git --version")]},
            {"text": "ok"},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "go", answer("approve_always"))
    assert len(sink.of_type(ApprovalRequest)) == 1
    assert all(r.ok for r in sink.of_type(ToolCallResult))


async def test_ask_beats_allow(harness: Harness, private_koda_home: Path) -> None:
    user_rules(private_koda_home, '[permissions]\nallow = ["Write"]\n')
    project_rules(harness, '[permissions]\nask = ["Write(*.lock)"]\n')
    session = harness.session(
        [
            {"tool_calls": [call("w1", "Write", path="a.txt", content="x")]},
            {"tool_calls": [call("w2", "Write", path="deps.lock", content="x")]},
            {"text": "ok"},
        ],
        mode="safe",
    )
    sink = await harness.turn(session, "write", answer("reject"))
    assert [r.detail for r in sink.of_type(ApprovalRequest)] == ["Write deps.lock"]
    assert (harness.project / "a.txt").exists() and not (harness.project / "deps.lock").exists()


async def test_allow_runs_what_safe_mode_would_ask_about(harness: Harness) -> None:
    project_rules(harness, '[permissions]\nallow = ["Write(notes/**)"]\n')
    session = harness.session(
        [
            {"tool_calls": [call("w1", "Write", path="notes/a.md", content="x")]},
            {"tool_calls": [call("w2", "Write", path="other.md", content="x")]},
            {"text": "ok"},
        ],
        mode="safe",
    )
    sink = await harness.turn(session, "write", answer("reject"))
    assert (harness.project / "notes" / "a.md").exists()
    assert [r.detail for r in sink.of_type(ApprovalRequest)] == ["Write other.md"]
    assert not (harness.project / "other.md").exists()


async def test_allow_runs_a_destructive_command_without_asking(harness: Harness) -> None:
    (harness.project / "build").mkdir()
    project_rules(harness, '[permissions]\nallow = ["Bash(rm -rf build)"]\n')
    session = harness.session(
        [{"tool_calls": [call("b", "Bash", command="rm -rf build")]}, {"text": "ok"}], mode="auto"
    )
    sink = await harness.turn(session, "clean")
    assert not sink.of_type(ApprovalRequest)
    assert not (harness.project / "build").exists()


async def test_a_bash_allow_does_not_cover_another_command_on_the_line(harness: Harness) -> None:
    (harness.project / "x").mkdir()
    project_rules(harness, '[permissions]\nallow = ["Bash(touch *)"]\n')
    session = harness.session(
        [
            {"tool_calls": [call("b1", "Bash", command="touch a.txt && ls")]},
            {"tool_calls": [call("b2", "Bash", command="touch b.txt && rm -rf x")]},
            {"text": "ok"},
        ],
        mode="safe",
    )
    sink = await harness.turn(session, "go", answer("reject"))
    assert (harness.project / "a.txt").exists()
    [request] = sink.of_type(ApprovalRequest)
    assert request.effect == "destructive" and "rm -rf x" in request.detail
    assert (harness.project / "x").is_dir() and not (harness.project / "b.txt").exists()


async def test_changing_the_project_settings_always_asks(harness: Harness) -> None:
    settings = project_rules(harness, '[permissions]\nallow = ["Write", "Edit", "Delete"]\n')
    before = settings.read_text()
    session = harness.session(
        [
            {
                "tool_calls": [
                    call("w", "Write", path=".koda/koda.toml", content="[permissions]\n"),
                    call("e", "Edit", path="./.koda/../.koda/koda.toml", old_string="Write",
                         new_string="Bash"),
                    call("d", "Delete", path=".koda", recursive=True),
                    call("ok", "Write", path="fine.txt", content="x"),
                ]
            },
            {"text": "ok"},
        ],
        mode="auto",
    )  # fmt: skip
    sink = await harness.turn(session, "loosen the rules", answer("reject", "reject", "reject"))
    asked = sink.of_type(ApprovalRequest)
    assert [(a.tool_name, a.effect) for a in asked] == [
        ("Write", "destructive"),
        ("Edit", "destructive"),
        ("Delete", "destructive"),
    ]
    assert settings.read_text() == before
    assert (harness.project / "fine.txt").exists(), "the allow rule still covers other files"


async def test_approving_a_settings_change_for_good_is_not_remembered(harness: Harness) -> None:
    settings = project_rules(harness, "# rules\n")
    session = harness.session(
        [
            {"tool_calls": [overwrite("w1", "# one\n")]},
            {"tool_calls": [overwrite("w2", "# two\n")]},
            {"text": "ok"},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "edit", answer("approve_always", "reject"))
    assert len(sink.of_type(ApprovalRequest)) == 2
    assert settings.read_text() == "# one\n"


async def test_writing_settings_that_do_not_exist_yet_asks(harness: Harness) -> None:
    session = harness.session(
        [
            {"tool_calls": [call("w", "Write", path=".koda/koda.toml", content="x")]},
            {"tool_calls": [call("v", "Write", path=".KODA/Koda.toml", content="x")]},
            {"text": "ok"},
        ],
        mode="auto",
    )
    sink = await harness.turn(session, "go", answer("reject", "reject"))
    # On a case-insensitive disk the second is the same file, so it asks everywhere.
    assert [a.detail for a in sink.of_type(ApprovalRequest)] == [
        "Write .koda/koda.toml",
        "Write .KODA/Koda.toml",
    ]
    assert not (harness.project / ".koda" / "koda.toml").exists()
    assert not (harness.project / ".KODA" / "Koda.toml").exists()
