"""Turning stored rows into a history every provider accepts, repairing what a crash left."""

from __future__ import annotations

from typing import Any

from koda.providers.base import ImageData, Message, ToolCall
from koda.store import MessageRow

UNANSWERED_NOTE = (
    "[no result: the session stopped before this tool call finished; it may not have run]"
)


def tool_call_to_json(call: ToolCall) -> dict[str, Any]:
    data: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.signature:
        data["signature"] = call.signature
    return data


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    args = raw.get("arguments")
    return ToolCall(
        id=str(raw.get("id")),
        name=str(raw.get("name")),
        arguments=args if isinstance(args, dict) else {},
        signature=raw.get("signature"),
    )


def to_message(row: MessageRow) -> Message:
    return Message(
        role=row.role,  # type: ignore[arg-type]
        content=row.content,
        thinking=row.thinking,
        thinking_signature=row.thinking_signature,
        tool_calls=[_tool_call(c) for c in row.tool_calls],
        tool_call_id=row.tool_call_id,
        tool_name=row.tool_name,
        images=[ImageData(i["media_type"], i["data"]) for i in row.images],
    )


def build_history(rows: list[MessageRow]) -> list[Message]:
    """Completed, non-system rows as messages, with three repairs.

    Tool calls left without a result (a crash or kill mid-tool) get a closing note; tool results
    whose call is gone are dropped; consecutive user messages (an interrupted reply) are joined.
    """
    history: list[Message] = []
    open_calls: dict[str, ToolCall] = {}
    for row in rows:
        if row.role == "system" or not row.is_complete:
            continue
        msg = to_message(row)
        if msg.role == "assistant" and not (msg.content or msg.tool_calls):
            continue  # an empty reply carries nothing and some APIs reject it
        if msg.role == "tool":
            if msg.tool_call_id in open_calls:
                del open_calls[msg.tool_call_id]
                history.append(msg)
            continue
        _close(history, open_calls)
        if (
            msg.role == "user"
            and history
            and history[-1].role == "user"
            and not history[-1].tool_call_id
        ):
            prev = history[-1]
            prev.content = f"{prev.content}\n\n{msg.content}" if prev.content else msg.content
            prev.images.extend(msg.images)
            continue
        history.append(msg)
        open_calls = {c.id: c for c in msg.tool_calls}
    _close(history, open_calls)
    return history


def _close(history: list[Message], open_calls: dict[str, ToolCall]) -> None:
    for call in open_calls.values():
        history.append(
            Message(role="tool", content=UNANSWERED_NOTE, tool_call_id=call.id, tool_name=call.name)
        )
    open_calls.clear()
