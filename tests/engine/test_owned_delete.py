"""Deleting a file Koda itself created needs no approval, in any mode; other deletes do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from koda.engine.commands import ApprovalDecision, ApprovalResponse, EngineCommand
from koda.engine.events import ActionBlocked, ApprovalRequest, EngineEvent, ToolCallResult

if TYPE_CHECKING:
    from conftest import Harness


@pytest.mark.parametrize("mode", ["safe", "auto"])
async def test_deleting_a_file_koda_created_is_not_asked(harness: Harness, mode: str) -> None:
    write = {"id": "w", "name": "Write", "args": {"path": "scratch.txt", "content": "x"}}
    delete = {"id": "d", "name": "Delete", "args": {"path": "scratch.txt"}}
    session = harness.session(
        [{"tool_calls": [write]}, {"tool_calls": [delete]}, {"text": "cleaned up"}], mode=mode
    )
    session.always_allow.add("Write")  # the write itself is not what this test is about
    sink = await harness.turn(session, "make and remove a scratch file")
    assert not [a for a in sink.of_type(ApprovalRequest) if a.tool_name == "Delete"]
    assert not sink.of_type(ActionBlocked)
    assert [r.ok for r in sink.of_type(ToolCallResult)] == [True, True]
    assert not (harness.project / "scratch.txt").exists()


async def test_deleting_the_users_file_is_still_asked(harness: Harness) -> None:
    (harness.project / "theirs.txt").write_text("keep me\n")
    delete = {"id": "d", "name": "Delete", "args": {"path": "theirs.txt"}}
    session = harness.session([{"tool_calls": [delete]}, {"text": "ok"}], mode="auto")

    def refuse(event: EngineEvent) -> EngineCommand | None:
        if isinstance(event, ApprovalRequest):
            return ApprovalResponse(event.id, ApprovalDecision("reject"))
        return None

    sink = await harness.turn(session, "delete it", refuse)
    assert [a.tool_name for a in sink.of_type(ApprovalRequest)] == ["Delete"]
    assert (harness.project / "theirs.txt").read_text() == "keep me\n"
