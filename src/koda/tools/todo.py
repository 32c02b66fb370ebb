"""TodoWrite: the session's task list, replaced whole on every call, one item in progress."""

from __future__ import annotations

import json
from typing import Any

from koda.tools.base import Effect, ToolContext, ToolError, ToolResult
from koda.tools.schema import arguments, string

STATUSES = ("pending", "in_progress", "completed")
METADATA_KEY = "todo"
MAX_ITEMS = 100
MAX_CONTENT_CHARS = 500


class TodoWrite:
    name = "TodoWrite"
    description = (
        "Replace the session's task list (send the whole list each time). Use it for work with "
        "several steps: mark an item in_progress before starting it (one at a time) and "
        "completed as soon as it is done."
    )

    def __init__(self) -> None:
        item = arguments(
            ["content", "status"],
            content=string("The task, short."),
            status=string("pending, in_progress or completed.") | {"enum": list(STATUSES)},
        )
        # Models trained on other agents add keys (id, activeForm); they are ignored, not refused.
        del item["additionalProperties"]
        self.parameters: dict[str, Any] = arguments(
            ["todos"], todos={"type": "array", "items": item, "description": "The full list."}
        )

    def effect(self, args: dict[str, Any]) -> Effect:
        # It only changes Koda's own session state, never the project.
        return Effect.READ_ONLY

    def summary(self, args: dict[str, Any]) -> str:
        todos = args.get("todos")
        count = len(todos) if isinstance(todos, list) else 0
        return f"TodoWrite: {count} item{'' if count == 1 else 's'}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        items = parse_todos(args.get("todos"))
        stored = json.dumps(items, ensure_ascii=False)
        if ctx.store is not None:
            if ctx.store.sessions.get_metadata(ctx.session_id, METADATA_KEY) == stored:
                # Same list again: no event, so front ends do not redraw an unchanged list.
                return ToolResult(f"Task list unchanged. {_counts(items)}")
            ctx.store.sessions.set_metadata(ctx.session_id, METADATA_KEY, stored)
        return ToolResult(f"Task list updated. {_counts(items)}", meta={"todo": items})


def parse_todos(raw: object) -> list[dict[str, str]]:
    """The list as {content, status} dicts, or a ToolError saying what to fix."""
    if isinstance(raw, str):  # some models send the array as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ToolError("Argument 'todos' must be a list of {content, status} items.") from None
    if raw is None:
        raise ToolError("Missing required argument 'todos' (a list of {content, status} items).")
    if not isinstance(raw, list):
        raise ToolError("Argument 'todos' must be a list of {content, status} items.")
    if len(raw) > MAX_ITEMS:
        raise ToolError(f"The list has {len(raw)} items; keep it to {MAX_ITEMS} at most.")
    items = [_item(entry, n) for n, entry in enumerate(raw, 1)]
    doing = [item["content"] for item in items if item["status"] == "in_progress"]
    if len(doing) > 1:
        raise ToolError(
            f"{len(doing)} items are in_progress ({'; '.join(doing)}); only one may be. "
            "Mark the others pending or completed."
        )
    return items


def _item(entry: object, n: int) -> dict[str, str]:
    if not isinstance(entry, dict):
        raise ToolError(f"Item {n} must be an object with content and status.")
    content = entry.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ToolError(f"Item {n} needs a non-empty 'content' string.")
    content = " ".join(content.split())
    if len(content) > MAX_CONTENT_CHARS:
        raise ToolError(f"Item {n} is {len(content)} characters; keep each task short.")
    status = entry.get("status")
    status = status.strip().lower() if isinstance(status, str) else status
    if status not in STATUSES:
        raise ToolError(f"Item {n} has status {status!r}; use pending, in_progress or completed.")
    return {"content": content, "status": str(status)}


def _counts(items: list[dict[str, str]]) -> str:
    if not items:
        return "It is empty."
    done = sum(item["status"] == "completed" for item in items)
    pending = sum(item["status"] == "pending" for item in items)
    current = next((item["content"] for item in items if item["status"] == "in_progress"), None)
    now = f'; in progress: "{current}"' if current else ""
    return f"{done} of {len(items)} completed, {pending} pending{now}."
